package admissionregistration

import (
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"

	"github.com/skiff-io/skiff/internal/registry"
)

// A mutating admission policy has no status, so the registry's default
// PrepareForCreate and PrepareForUpdate (generation 1, bumped on a spec
// change) are upstream's for both kinds.

var (
	supportedPatchTypes = []string{
		string(admissionregistrationv1.PatchTypeApplyConfiguration),
		string(admissionregistrationv1.PatchTypeJSONPatch),
	}
	// supportedMutatingOperations: there is no object to mutate on a
	// DELETE, so a mutating policy or its binding may not match one.
	supportedMutatingOperations = []string{
		string(admissionregistrationv1.OperationAll),
		string(admissionregistrationv1.Connect),
		string(admissionregistrationv1.Create),
		string(admissionregistrationv1.Update),
	}
)

// mutatingPolicyOptions are what an update relaxes, as policyOptions
// for a validating policy: unchanged match conditions are not compiled
// again, and the expressions the stored policy already had are compiled
// in the StoredExpressions environment.
type mutatingPolicyOptions struct {
	skipMatchConditions bool
	matchConditions     sets.Set[string]
	applyConfigurations sets.Set[string]
	jsonPatches         sets.Set[string]
}

func newMutatingPolicyOptions() mutatingPolicyOptions {
	return mutatingPolicyOptions{
		matchConditions:     sets.New[string](),
		applyConfigurations: sets.New[string](),
		jsonPatches:         sets.New[string](),
	}
}

func validateMutatingPolicy(obj runtime.Object) field.ErrorList {
	p, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicy)
	if !ok {
		return nil
	}
	return validateMutatingPolicySpec(&p.Spec, newMutatingPolicyOptions(), field.NewPath("spec"))
}

func validateMutatingPolicyUpdate(obj, old runtime.Object) field.ErrorList {
	p, ok1 := obj.(*admissionregistrationv1.MutatingAdmissionPolicy)
	o, ok2 := old.(*admissionregistrationv1.MutatingAdmissionPolicy)
	if !ok1 || !ok2 {
		return nil
	}
	opts := newMutatingPolicyOptions()
	opts.skipMatchConditions = apiequality.Semantic.DeepEqual(p.Spec.ParamKind, o.Spec.ParamKind) &&
		apiequality.Semantic.DeepEqual(p.Spec.MatchConditions, o.Spec.MatchConditions)
	for _, mc := range o.Spec.MatchConditions {
		opts.matchConditions.Insert(mc.Expression)
	}
	for _, m := range o.Spec.Mutations {
		if m.ApplyConfiguration != nil {
			opts.applyConfigurations.Insert(m.ApplyConfiguration.Expression)
		}
		if m.JSONPatch != nil {
			opts.jsonPatches.Insert(m.JSONPatch.Expression)
		}
	}
	return validateMutatingPolicySpec(&p.Spec, opts, field.NewPath("spec"))
}

func validateMutatingPolicySpec(spec *admissionregistrationv1.MutatingAdmissionPolicySpec, opts mutatingPolicyOptions, p *field.Path) field.ErrorList {
	errs := validatePolicyHead(spec.FailurePolicy, spec.ParamKind, spec.MatchConstraints, spec.MatchConditions,
		opts.skipMatchConditions, opts.matchConditions, p)
	if spec.MatchConstraints != nil {
		errs = append(errs, validateMutatingOperations(spec.MatchConstraints, p.Child("matchConstraints"))...)
	}
	hasParams := spec.ParamKind != nil

	// One compiler for the whole policy: a variable's type, once
	// compiled, is known to the mutations after it. Upstream compiles a
	// mutating policy's variables always as new expressions; so does
	// skiff (an empty stored set).
	compiler := newPolicyCompiler(len(spec.Variables) > 0)
	vopts := policyOptions{stored: storedExpressions{validations: sets.New[string]()}}
	for i := range spec.Variables {
		errs = append(errs, validateVariable(compiler, &spec.Variables[i], hasParams, vopts, p.Child("variables").Index(i))...)
	}
	if len(spec.Mutations) == 0 {
		errs = append(errs, field.Required(p.Child("mutations"), "mutations must contain at least one item"))
	}
	for i := range spec.Mutations {
		errs = append(errs, validateMutation(compiler, &spec.Mutations[i], hasParams, opts, p.Child("mutations").Index(i))...)
	}
	switch {
	case spec.ReinvocationPolicy == "":
		errs = append(errs, field.Required(p.Child("reinvocationPolicy"), ""))
	case !slices.Contains(supportedReinvocationPolicies, string(spec.ReinvocationPolicy)):
		errs = append(errs, field.NotSupported(p.Child("reinvocationPolicy"), spec.ReinvocationPolicy, supportedReinvocationPolicies))
	}
	return errs
}

// validateMutatingOperations refuses DELETE in the resource rules of m.
// As upstream, the error names the operations of all rules at once.
func validateMutatingOperations(m *admissionregistrationv1.MatchResources, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, r := range m.ResourceRules {
		for _, op := range r.Operations {
			if !slices.Contains(supportedMutatingOperations, string(op)) {
				errs = append(errs, field.NotSupported(p.Child("resourceRules", "operations"), op, supportedMutatingOperations))
			}
		}
	}
	return errs
}

// validateMutation: the patch type, exactly the member it names, and
// its expression compiled with the patch types (Object, JSONPatch) in
// scope, to the type the patch type wants (an Object, or a list of
// JSONPatch).
func validateMutation(compiler plugincel.Compiler, m *admissionregistrationv1.Mutation, hasParams bool, opts mutatingPolicyOptions, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	decls := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true, HasPatchTypes: true}
	switch m.PatchType {
	case "":
		errs = append(errs, field.Required(p.Child("patchType"), ""))
	case admissionregistrationv1.PatchTypeJSONPatch:
		if m.JSONPatch == nil {
			errs = append(errs, field.Required(p.Child("jsonPatch"), "must be specified when patchType is JSONPatch"))
		} else if expr := strings.TrimSpace(m.JSONPatch.Expression); expr == "" {
			errs = append(errs, field.Required(p.Child("jsonPatch", "expression"), ""))
		} else {
			errs = append(errs, compileExpression(compiler, &patch.JSONPatchCondition{Expression: expr}, decls,
				envType(opts.jsonPatches, m.JSONPatch.Expression), expr, p.Child("jsonPatch", "expression"))...)
		}
		if m.ApplyConfiguration != nil {
			errs = append(errs, field.Invalid(p.Child("applyConfiguration"), "{applyConfiguration}", "must not be specified when patchType is JSONPatch"))
		}
	case admissionregistrationv1.PatchTypeApplyConfiguration:
		if m.ApplyConfiguration == nil {
			errs = append(errs, field.Required(p.Child("applyConfiguration"), "must be specified when patchType is ApplyConfiguration"))
		} else if expr := strings.TrimSpace(m.ApplyConfiguration.Expression); expr == "" {
			errs = append(errs, field.Required(p.Child("applyConfiguration", "expression"), ""))
		} else {
			errs = append(errs, compileExpression(compiler, &patch.ApplyConfigurationCondition{Expression: expr}, decls,
				envType(opts.applyConfigurations, m.ApplyConfiguration.Expression), expr, p.Child("applyConfiguration", "expression"))...)
		}
		if m.JSONPatch != nil {
			errs = append(errs, field.Invalid(p.Child("jsonPatch"), "{jsonPatch}", "must not be specified when patchType is ApplyConfiguration"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("patchType"), m.PatchType, supportedPatchTypes))
	}
	return errs
}

func validateMutatingBinding(obj runtime.Object) field.ErrorList {
	b, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicyBinding)
	if !ok {
		return nil
	}
	p := field.NewPath("spec")
	errs := validatePolicyName(b.Spec.PolicyName, p.Child("policyName"))
	errs = append(errs, validateParamRef(b.Spec.ParamRef, p.Child("paramRef"))...)
	if m := b.Spec.MatchResources; m != nil {
		errs = append(errs, validateMatchResources(m, p.Child("matchResources"))...)
		errs = append(errs, validateMutatingOperations(m, p.Child("matchResources"))...)
	}
	return errs
}

// validateMutatingBindingUpdate: nothing of a binding is immutable.
func validateMutatingBindingUpdate(obj, _ runtime.Object) field.ErrorList {
	return validateMutatingBinding(obj)
}

func defaultMutatingPolicy(obj runtime.Object) {
	p, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicy)
	if !ok {
		return
	}
	setDefault(&p.Spec.FailurePolicy, admissionregistrationv1.Fail)
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultMutatingBinding(obj runtime.Object) {
	if b, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicyBinding); ok {
		defaultMatchResources(b.Spec.MatchResources)
	}
}

// mutatingPolicyTable is NAME MUTATIONS PARAMKIND AGE.
var mutatingPolicyTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Mutations", Type: "integer", Description: "Mutation indicates the number of mutations rules defined in this configuration"},
		{Name: "ParamKind", Type: "string", Description: "ParamKind specifies the kind of resources used to parameterize this policy"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		p, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicy)
		if !ok {
			return nil
		}
		paramKind := "<unset>"
		if pk := p.Spec.ParamKind; pk != nil {
			paramKind = pk.APIVersion + "/" + pk.Kind
		}
		return []interface{}{p.Name, int64(len(p.Spec.Mutations)), paramKind, registry.Age(p)}
	},
}

// mutatingBindingTable is NAME POLICYNAME PARAMREF AGE, as bindingTable.
var mutatingBindingTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "PolicyName", Type: "string", Description: "PolicyName indicates the policy definition which the policy binding binded to"},
		{Name: "ParamRef", Type: "string", Description: "ParamRef indicates the param resource which sets the configuration param"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		b, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicyBinding)
		if !ok {
			return nil
		}
		return []interface{}{b.Name, b.Spec.PolicyName, paramRefCell(b.Spec.ParamRef), registry.Age(b)}
	},
}
