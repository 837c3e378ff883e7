package dynamic

import (
	"context"
	"fmt"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/generic"
	"k8s.io/apiserver/pkg/admission/plugin/policy/matching"
	mutatingpolicy "k8s.io/apiserver/pkg/admission/plugin/policy/mutating"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/client-go/discovery"
	dynamicclient "k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// TypeConverters returns the server's type converter: the structure of
// every built-in kind it serves, as its server-side apply knows them.
// It may be called at every mutation; the server builds it once.
type TypeConverters func() (managedfields.TypeConverter, error)

// mutatingPolicies is upstream's MutatingAdmissionPolicy plugin put
// together from its published parts: its policy source and informers, its
// dispatcher (matching, parameters, failurePolicy, the runtime CEL cost
// budget, reinvocation) and its patchers (apply configurations merged by
// structured-merge-diff, JSON patches).
//
// Upstream's mutating.NewPlugin is not used whole because of one part:
// the types its apply configurations merge against. It reads them from
// the server's /openapi/v3 over the loopback, fetched in the background
// every five seconds, so that until the first fetch returns, a write a
// policy matches is refused with a 503; in skiff the plugin starts with
// the cluster's first policy or webhook, so that first write is often
// just then. Here the built-in kinds take the server's own type converter
// (typeConverters), in process, ready at once; only custom resources
// are looked up in /openapi/v3 as upstream does, the background fetches
// starting at the first of them.
type mutatingPolicies struct {
	*generic.Plugin[mutatingpolicy.PolicyHook]
}

// Admit applies the policies that match the request.
func (p *mutatingPolicies) Admit(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	return p.Dispatch(ctx, a, o)
}

func newMutatingPolicies(types TypeConverters) *mutatingPolicies {
	// There is no object to mutate on a DELETE.
	handler := admission.NewHandler(admission.Create, admission.Update, admission.Connect)
	p := generic.NewPlugin(handler,
		func(f informers.SharedInformerFactory, _ kubernetes.Interface, dyn dynamicclient.Interface, mapper meta.RESTMapper) generic.Source[mutatingpolicy.PolicyHook] {
			regs := f.Admissionregistration().V1()
			return generic.NewPolicySource(regs.MutatingAdmissionPolicies().Informer(), regs.MutatingAdmissionPolicyBindings().Informer(),
				mutatingpolicy.NewMutatingAdmissionPolicyAccessor, mutatingpolicy.NewMutatingAdmissionPolicyBindingAccessor,
				compileMutatingPolicy, f, dyn, mapper)
		},
		func(a authorizer.UnconditionalAuthorizer, m *matching.Matcher, client kubernetes.Interface) generic.Dispatcher[mutatingpolicy.PolicyHook] {
			return mutatingpolicy.NewDispatcher(a, m, &typeConverters{server: types, discovery: client.Discovery()})
		})
	// MutatingAdmissionPolicy is GA: no feature gate to ask.
	p.SetEnabled(true)
	return &mutatingPolicies{p}
}

// compileMutatingPolicy compiles a stored policy for the dispatcher:
// its variables, match conditions and mutations, in one composited
// environment so that the mutations see the variables. Expressions are
// compiled in the StoredExpressions environment, as upstream compiles
// what it has admitted. A mutation that cannot be compiled still gets a
// patcher, one that fails, so that failurePolicy decides.
func compileMutatingPolicy(p *admissionregistrationv1.MutatingAdmissionPolicy) mutatingpolicy.PolicyEvaluator {
	compiler, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		return mutatingpolicy.PolicyEvaluator{Error: fmt.Errorf("CEL compiler: %w", err)}
	}
	decls := plugincel.OptionalVariableDeclarations{HasParams: p.Spec.ParamKind != nil, HasAuthorizer: true}

	variables := make([]plugincel.NamedExpressionAccessor, 0, len(p.Spec.Variables))
	for _, v := range p.Spec.Variables {
		variables = append(variables, &mutatingpolicy.Variable{Name: v.Name, Expression: v.Expression})
	}
	compiler.CompileAndStoreVariables(variables, decls, environment.StoredExpressions)

	var matcher matchconditions.Matcher
	if conds := p.Spec.MatchConditions; len(conds) > 0 {
		accessors := make([]plugincel.ExpressionAccessor, len(conds))
		for i := range conds {
			accessors[i] = (*matchconditions.MatchCondition)(&conds[i])
		}
		matcher = matchconditions.NewMatcher(compiler.CompileCondition(accessors, decls, environment.StoredExpressions),
			p.Spec.FailurePolicy, "policy", "admit", p.Name)
	}

	decls.HasPatchTypes = true
	patchers := make([]patch.Patcher, 0, len(p.Spec.Mutations))
	for i, m := range p.Spec.Mutations {
		switch {
		case m.PatchType == admissionregistrationv1.PatchTypeJSONPatch && m.JSONPatch != nil:
			e := compiler.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: m.JSONPatch.Expression}, decls, environment.StoredExpressions)
			patchers = append(patchers, patch.NewJSONPatcher(e))
		case m.PatchType == admissionregistrationv1.PatchTypeApplyConfiguration && m.ApplyConfiguration != nil:
			e := compiler.CompileMutatingEvaluator(&patch.ApplyConfigurationCondition{Expression: m.ApplyConfiguration.Expression}, decls, environment.StoredExpressions)
			patchers = append(patchers, patch.NewApplyConfigurationPatcher(e))
		default:
			// Validation refuses such a mutation; one stored by another
			// server fails as its policy says.
			patchers = append(patchers, failingPatcher{fmt.Errorf("mutation %d: unsupported patchType %q", i, m.PatchType)})
		}
	}
	return mutatingpolicy.PolicyEvaluator{Matcher: matcher, Mutators: patchers, CompositedCompiler: compiler}
}

// failingPatcher is the patcher of a mutation that cannot be applied.
type failingPatcher struct{ err error }

func (f failingPatcher) Patch(context.Context, patch.Request, int64) (runtime.Object, error) {
	return nil, f.err
}

// typeConverters answers the dispatcher's question, which type converter
// knows a kind, from the server's own converter for the built-in kinds
// and from upstream's /openapi/v3 reader for the others.
type typeConverters struct {
	server    TypeConverters
	discovery discovery.DiscoveryInterface

	mu      sync.Mutex
	ctx     context.Context            // set by Run; the openapi reader runs on it
	openapi patch.TypeConverterManager // made and started at the first kind the server does not know
}

var _ patch.TypeConverterManager = (*typeConverters)(nil)

// Run keeps ctx for the openapi reader, which starts at the first kind
// the server does not know, and returns when ctx ends.
func (t *typeConverters) Run(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
	<-ctx.Done()
}

// GetTypeConverter returns the converter that knows gvk, or nil while
// none does yet (a custom resource before /openapi/v3 was read): the
// dispatcher then refuses the write with a 503, as upstream's.
func (t *typeConverters) GetTypeConverter(gvk schema.GroupVersionKind) managedfields.TypeConverter {
	if t.server != nil {
		if tc, err := t.server(); err == nil && knows(tc, gvk) {
			return tc
		}
	}
	t.mu.Lock()
	if t.openapi == nil && t.ctx != nil {
		t.openapi = patch.NewTypeConverterManager(nil, t.discovery.OpenAPIV3())
		go t.openapi.Run(t.ctx)
	}
	openapi := t.openapi
	t.mu.Unlock()
	if openapi == nil {
		return nil
	}
	return openapi.GetTypeConverter(gvk)
}

// knows reports whether tc has a type for gvk: it turns an empty object
// of that kind into a typed value.
func knows(tc managedfields.TypeConverter, gvk schema.GroupVersionKind) bool {
	stub := &unstructured.Unstructured{}
	stub.SetGroupVersionKind(gvk)
	_, err := tc.ObjectToTyped(stub)
	return err == nil
}
