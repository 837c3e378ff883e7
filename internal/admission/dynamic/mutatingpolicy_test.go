package dynamic

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/openapi"
)

// deploymentTypes is a server's type converter that knows Deployments.
func deploymentTypes(t *testing.T) TypeConverters {
	t.Helper()
	defs := openapi.Definitions([]openapi.Resource{{
		GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Plural: "deployments", Namespaced: true,
		Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{},
	}})
	tc, err := managedfields.NewTypeConverter(defs, false)
	if err != nil {
		t.Fatal(err)
	}
	return func() (managedfields.TypeConverter, error) { return tc, nil }
}

// mutatingPolicy is a policy on Deployment creates with mutations, and
// its binding.
func mutatingPolicy(name string, failure admissionregistrationv1.FailurePolicyType, mutations ...admissionregistrationv1.Mutation) []runtime.Object {
	return []runtime.Object{
		&admissionregistrationv1.MutatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				FailurePolicy:      ptr.To(failure),
				ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
				MatchConstraints: &admissionregistrationv1.MatchResources{
					NamespaceSelector: &metav1.LabelSelector{}, ObjectSelector: &metav1.LabelSelector{},
					MatchPolicy: ptr.To(admissionregistrationv1.Equivalent),
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"},
							Scope: ptr.To(admissionregistrationv1.AllScopes)},
					}}},
				},
				Mutations: mutations,
			},
		},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-binding"},
			Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: name},
		},
	}
}

func startWithTypes(t *testing.T, types TypeConverters, objs ...runtime.Object) *Admission {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	err = a.start(ctx, fake.NewSimpleClientset(objs...), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		meta.NewDefaultRESTMapper(nil), apiserver.AlwaysAllow{}, types)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMutatingPolicies(t *testing.T) {
	applyReplicas := admissionregistrationv1.Mutation{
		PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
		ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: `Object{spec: Object.spec{replicas: 1337}}`},
	}
	patchLabel := admissionregistrationv1.Mutation{
		PatchType: admissionregistrationv1.PatchTypeJSONPatch,
		JSONPatch: &admissionregistrationv1.JSONPatch{Expression: `[JSONPatch{op: "add", path: "/metadata/labels", value: {"patched": "yes"}}]`},
	}
	failing := admissionregistrationv1.Mutation{
		PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
		ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: `Object{spec: Object.spec{replicas: 1 / (object.spec.replicas - object.spec.replicas)}}`},
	}
	unsupported := admissionregistrationv1.Mutation{PatchType: "StrategicMerge"}
	for _, tc := range []struct {
		name         string
		objs         []runtime.Object
		wantReplicas int32
		wantLabel    string
		wantErr      string
	}{
		{name: "apply configuration and JSON patch", objs: mutatingPolicy("p", admissionregistrationv1.Fail, applyReplicas, patchLabel),
			wantReplicas: 1337, wantLabel: "yes"},
		{name: "Fail on an error", objs: mutatingPolicy("p", admissionregistrationv1.Fail, failing, applyReplicas),
			wantErr: "policy 'p' with binding 'p-binding' denied request: expression"},
		{name: "Ignore an error", objs: mutatingPolicy("p", admissionregistrationv1.Ignore, failing, applyReplicas), wantReplicas: 1337},
		{name: "unsupported patch type", objs: mutatingPolicy("p", admissionregistrationv1.Fail, unsupported),
			wantErr: `mutation 0: unsupported patchType "StrategicMerge"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startWithTypes(t, deploymentTypes(t), tc.objs...)
			attrs := deploymentCreate(3)
			err := a.Admit(context.Background(), attrs, admission.NewObjectInterfacesFromScheme(scheme.Scheme))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Admit = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := attrs.GetObject().(*appsv1.Deployment)
			if *d.Spec.Replicas != tc.wantReplicas || d.Labels["patched"] != tc.wantLabel {
				t.Errorf("admitted replicas %d labels %v, want %d and patched=%q", *d.Spec.Replicas, d.Labels, tc.wantReplicas, tc.wantLabel)
			}
		})
	}
}

func TestTypeConvertersPreferTheServers(t *testing.T) {
	tc := &typeConverters{server: deploymentTypes(t)}
	if tc.GetTypeConverter(appsv1.SchemeGroupVersion.WithKind("Deployment")) == nil {
		t.Error("no type converter for Deployments from the server's")
	}
	// Not running: a kind the server does not know has none yet, and
	// /openapi/v3 is not read.
	if got := tc.GetTypeConverter(appsv1.SchemeGroupVersion.WithKind("Widget")); got != nil || tc.openapi != nil {
		t.Errorf("Widget: %v, openapi reader %v; want none", got, tc.openapi)
	}
}
