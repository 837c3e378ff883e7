package admissionregistration

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/client-go/util/jsonpath"
)

const (
	maxAuditAnnotations = 20
	// maxAuditAnnotationValueExpressionLength is upstream's 5kb, below the
	// 10kb a value may have, as concatenating strings makes values longer
	// than their expressions.
	maxAuditAnnotationValueExpressionLength = 5 * 1024
)

// supportedReasons are the reasons upstream's validation accepts on a
// validation. The API documentation also lists Unauthorized, which
// upstream's validation refuses; skiff follows the validation.
var supportedReasons = []string{
	string(metav1.StatusReasonForbidden),
	string(metav1.StatusReasonInvalid),
	string(metav1.StatusReasonRequestEntityTooLarge),
}

// policyOptions are what an update relaxes: unchanged match conditions
// are not compiled again, and expressions the policy already had are
// compiled in the StoredExpressions environment.
type policyOptions struct {
	skipMatchConditions bool
	stored              storedExpressions
}

// storedExpressions are the expressions of the stored object, by kind.
type storedExpressions struct {
	matchConditions, validations, messageExpressions, auditAnnotations sets.Set[string]
}

func policyStoredExpressions(p *admissionregistrationv1.ValidatingAdmissionPolicy) storedExpressions {
	s := storedExpressions{
		matchConditions:    sets.New[string](),
		validations:        sets.New[string](),
		messageExpressions: sets.New[string](),
		auditAnnotations:   sets.New[string](),
	}
	for _, mc := range p.Spec.MatchConditions {
		s.matchConditions.Insert(mc.Expression)
	}
	for _, v := range p.Spec.Validations {
		s.validations.Insert(v.Expression)
		if v.MessageExpression != "" {
			s.messageExpressions.Insert(v.MessageExpression)
		}
	}
	for _, a := range p.Spec.AuditAnnotations {
		s.auditAnnotations.Insert(a.ValueExpression)
	}
	return s
}

func validatePolicy(obj runtime.Object) field.ErrorList {
	p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if !ok {
		return nil
	}
	return validatePolicySpec(p.Name, &p.Spec, policyOptions{}, field.NewPath("spec"))
}

func validatePolicyUpdate(obj, old runtime.Object) field.ErrorList {
	p, ok1 := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	o, ok2 := old.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if !ok1 || !ok2 {
		return nil
	}
	opts := policyOptions{
		// The match conditions' environment depends on paramKind (params
		// is declared only with one).
		skipMatchConditions: apiequality.Semantic.DeepEqual(p.Spec.ParamKind, o.Spec.ParamKind) &&
			apiequality.Semantic.DeepEqual(p.Spec.MatchConditions, o.Spec.MatchConditions),
		stored: policyStoredExpressions(o),
	}
	return validatePolicySpec(p.Name, &p.Spec, opts, field.NewPath("spec"))
}

// validatePolicyHead checks what validating and mutating admission
// policies share: failurePolicy, paramKind, matchConstraints (whose
// resource rules give the policy's expressions the types they are checked
// against) and, unless skipped, matchConditions.
func validatePolicyHead(failurePolicy *admissionregistrationv1.FailurePolicyType, paramKind *admissionregistrationv1.ParamKind,
	match *admissionregistrationv1.MatchResources, conds []admissionregistrationv1.MatchCondition,
	skipMatchConditions bool, storedConds sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case failurePolicy == nil:
		errs = append(errs, field.Required(p.Child("failurePolicy"), ""))
	case !slices.Contains(supportedFailurePolicies, string(*failurePolicy)):
		errs = append(errs, field.NotSupported(p.Child("failurePolicy"), *failurePolicy, supportedFailurePolicies))
	}
	if paramKind != nil {
		errs = append(errs, validateParamKind(paramKind, p.Child("paramKind"))...)
	}
	if match == nil {
		errs = append(errs, field.Required(p.Child("matchConstraints"), ""))
	} else {
		errs = append(errs, validateMatchResources(match, p.Child("matchConstraints"))...)
		if len(match.ResourceRules) == 0 {
			errs = append(errs, field.Required(p.Child("matchConstraints", "resourceRules"), ""))
		}
	}
	if !skipMatchConditions {
		errs = append(errs, validateMatchConditions(conds, paramKind != nil, storedConds, p.Child("matchConditions"))...)
	}
	return errs
}

func validatePolicySpec(name string, spec *admissionregistrationv1.ValidatingAdmissionPolicySpec, opts policyOptions, p *field.Path) field.ErrorList {
	errs := validatePolicyHead(spec.FailurePolicy, spec.ParamKind, spec.MatchConstraints, spec.MatchConditions,
		opts.skipMatchConditions, opts.stored.matchConditions, p)
	hasParams := spec.ParamKind != nil

	// One compiler for the whole policy: a variable's type, once
	// compiled, is known to the expressions after it.
	compiler := newPolicyCompiler(len(spec.Variables) > 0)
	for i := range spec.Variables {
		errs = append(errs, validateVariable(compiler, &spec.Variables[i], hasParams, opts, p.Child("variables").Index(i))...)
	}
	if len(spec.Validations) == 0 && len(spec.AuditAnnotations) == 0 {
		const msg = "validations or auditAnnotations must contain at least one item"
		return append(errs,
			field.Required(p.Child("validations"), msg),
			field.Required(p.Child("auditAnnotations"), msg))
	}
	for i := range spec.Validations {
		errs = append(errs, validateValidation(compiler, &spec.Validations[i], hasParams, opts, p.Child("validations").Index(i))...)
	}
	if len(spec.AuditAnnotations) > maxAuditAnnotations {
		errs = append(errs, field.Invalid(p.Child("auditAnnotations"), spec.AuditAnnotations,
			fmt.Sprintf("must not have more than %d auditAnnotations", maxAuditAnnotations)))
	}
	keys := sets.New[string]()
	for i := range spec.AuditAnnotations {
		a, ap := &spec.AuditAnnotations[i], p.Child("auditAnnotations").Index(i)
		errs = append(errs, validateAuditAnnotation(compiler, name, a, hasParams, opts, ap)...)
		if keys.Has(a.Key) {
			errs = append(errs, field.Duplicate(ap.Child("key"), a.Key))
		}
		keys.Insert(a.Key)
	}
	return errs
}

// validateParamKind: apiVersion a group/version, kind a DNS-1035 label
// in any case.
func validateParamKind(pk *admissionregistrationv1.ParamKind, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	vp := p.Child("apiVersion")
	if pk.APIVersion == "" {
		errs = append(errs, field.Required(vp, ""))
	} else if group, version, err := splitGroupVersion(pk.APIVersion); err != nil {
		errs = append(errs, field.Invalid(vp, pk.APIVersion, err.Error()))
	} else {
		if group != "" {
			if msgs := validation.IsDNS1123Subdomain(group); len(msgs) > 0 {
				errs = append(errs, field.Invalid(vp, group, strings.Join(msgs, ",")))
			}
		}
		if version == "" {
			errs = append(errs, field.Invalid(vp, pk.APIVersion, "version must be specified"))
		} else if msgs := validation.IsDNS1035Label(version); len(msgs) > 0 {
			errs = append(errs, field.Invalid(vp, version, strings.Join(msgs, ",")))
		}
	}
	if pk.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	} else if msgs := validation.IsDNS1035Label(strings.ToLower(pk.Kind)); len(msgs) > 0 {
		errs = append(errs, field.Invalid(p.Child("kind"), pk.Kind, "may have mixed case, but should otherwise match: "+strings.Join(msgs, ",")))
	}
	return errs
}

// splitGroupVersion splits "group/version" or "version" (the core group);
// "/" is neither.
func splitGroupVersion(gv string) (group, version string, err error) {
	if gv == "/" {
		return "", "", nil
	}
	switch strings.Count(gv, "/") {
	case 0:
		return "", gv, nil
	case 1:
		group, version, _ = strings.Cut(gv, "/")
		return group, version, nil
	default:
		return "", "", fmt.Errorf("unexpected GroupVersion string: %v", gv)
	}
}

// validateVariable: a CEL identifier and an expression of any type,
// compiled into the policy's compiler so that later expressions see it.
func validateVariable(compiler plugincel.Compiler, v *admissionregistrationv1.Variable, hasParams bool, opts policyOptions, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if strings.TrimSpace(v.Name) == "" {
		errs = append(errs, field.Required(p.Child("name"), "name is not specified"))
	} else if !isCELIdentifier(v.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), v.Name, "name is not a valid CEL identifier"))
	}
	if strings.TrimSpace(v.Expression) == "" {
		return append(errs, field.Required(p.Child("expression"), "expression is not specified"))
	}
	c, ok := compiler.(*plugincel.CompositedCompiler)
	if !ok {
		return append(errs, field.InternalError(p, fmt.Errorf("variable composition is not allowed")))
	}
	// Upstream looks a variable's expression up among the stored
	// validations' expressions, not the stored variables'; so does skiff.
	res := c.CompileAndStoreVariable(variableExpression(v.Name, v.Expression), plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true},
		envType(opts.stored.validations, v.Expression))
	if res.Error != nil {
		errs = append(errs, celError(p.Child("expression"), v.Expression, res.Error))
	}
	return errs
}

func validateValidation(compiler plugincel.Compiler, v *admissionregistrationv1.Validation, hasParams bool, opts policyOptions, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if strings.TrimSpace(v.Expression) == "" {
		errs = append(errs, field.Required(p.Child("expression"), "expression is not specified"))
	} else {
		errs = append(errs, compileExpression(compiler, boolExpression(v.Expression),
			plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true},
			envType(opts.stored.validations, v.Expression), v.Expression, p.Child("expression"))...)
	}
	if v.MessageExpression != "" && strings.TrimSpace(v.MessageExpression) == "" {
		errs = append(errs, field.Invalid(p.Child("messageExpression"), v.MessageExpression, "must be non-empty if specified"))
	} else if v.MessageExpression != "" {
		// A message expression has no authorizer.
		errs = append(errs, compileExpression(compiler, stringExpression(v.MessageExpression),
			plugincel.OptionalVariableDeclarations{HasParams: hasParams},
			envType(opts.stored.messageExpressions, v.MessageExpression), v.MessageExpression, p.Child("messageExpression"))...)
	}
	msg := strings.TrimSpace(v.Message)
	if v.Message != "" && msg == "" {
		errs = append(errs, field.Invalid(p.Child("message"), v.Message, "message must be non-empty if specified"))
	} else if strings.ContainsAny(msg, "\r\n") {
		errs = append(errs, field.Invalid(p.Child("message"), v.Message, "message must not contain line breaks"))
	}
	if v.Reason != nil && !slices.Contains(supportedReasons, string(*v.Reason)) {
		errs = append(errs, field.NotSupported(p.Child("reason"), *v.Reason, supportedReasons))
	}
	return errs
}

// validateAuditAnnotation: the key, prefixed with the policy's name and a
// '/', is a qualified name (the audit annotation's); the value expression
// gives a string or null.
func validateAuditAnnotation(compiler plugincel.Compiler, policyName string, a *admissionregistrationv1.AuditAnnotation, hasParams bool, opts policyOptions, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if policyName == "" {
		errs = append(errs, field.Invalid(p.Child("key"), a.Key, "requires metadata.name be non-empty"))
	} else {
		qualified := policyName + "/" + a.Key
		for _, msg := range validation.IsQualifiedName(qualified) {
			errs = append(errs, field.Invalid(p.Child("key"), qualified, msg))
		}
	}
	vp := p.Child("valueExpression")
	expr := strings.TrimSpace(a.ValueExpression)
	switch {
	case expr == "":
		errs = append(errs, field.Required(vp, "valueExpression is not specified"))
	case len(expr) > maxAuditAnnotationValueExpressionLength:
		// Required, not TooLong: upstream's type.
		errs = append(errs, field.Required(vp, fmt.Sprintf("must not exceed %d bytes in length", maxAuditAnnotationValueExpressionLength)))
	default:
		errs = append(errs, compileExpression(compiler, stringOrNullExpression(expr),
			plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true},
			envType(opts.stored.auditAnnotations, a.ValueExpression), a.ValueExpression, vp)...)
	}
	return errs
}

var (
	celIdentifier = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*$`)
	celReserved   = sets.New("true", "false", "null", "in", "as", "break", "const", "continue", "else",
		"for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while")
)

// isCELIdentifier reports whether name is a CEL identifier: letters,
// digits and '_', not starting with a digit, and not a reserved word.
func isCELIdentifier(name string) bool {
	return celIdentifier.MatchString(name) && !celReserved.Has(name)
}

// validatePolicyStatusUpdate checks what a status write may change: the
// type-checking warnings and the conditions.
func validatePolicyStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if !ok {
		return nil
	}
	sp := field.NewPath("status")
	var errs field.ErrorList
	if tc := p.Status.TypeChecking; tc != nil {
		for i, w := range tc.ExpressionWarnings {
			wp := sp.Child("typeChecking", "expressionWarnings").Index(i)
			if w.Warning == "" {
				errs = append(errs, field.Required(wp.Child("warning"), ""))
			}
			errs = append(errs, validateFieldRef(w.FieldRef, wp.Child("fieldRef"))...)
		}
	}
	return append(errs, metav1validation.ValidateConditions(p.Status.Conditions, sp.Child("conditions"))...)
}

// validateFieldRef: a JSONPath into the policy ("spec.validations[0].expression").
func validateFieldRef(ref string, p *field.Path) field.ErrorList {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if err := jsonpath.New("spec").Parse("{" + ref + "}"); err != nil {
		return field.ErrorList{field.Invalid(p, ref, fmt.Sprintf("invalid JSONPath: %v", err))}
	}
	return nil
}
