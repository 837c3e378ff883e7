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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// maxReplicas is a policy and its binding: no Deployment over 3 replicas.
func maxReplicas() []runtime.Object {
	return []runtime.Object{
		&admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "max"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr.To(admissionregistrationv1.Fail),
				MatchConstraints: &admissionregistrationv1.MatchResources{
					NamespaceSelector: &metav1.LabelSelector{}, ObjectSelector: &metav1.LabelSelector{},
					MatchPolicy: ptr.To(admissionregistrationv1.Equivalent),
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"},
							Scope: ptr.To(admissionregistrationv1.AllScopes)},
					}}},
				},
				Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 3"}},
			},
		},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "max-binding"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName: "max", ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			},
		},
	}
}

func startWith(t *testing.T, objs ...runtime.Object) *Admission {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	err = a.start(ctx, fake.NewSimpleClientset(objs...), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		meta.NewDefaultRESTMapper(nil), apiserver.AlwaysAllow{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func deploymentCreate(replicas int32) admission.Attributes {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
	}
	return admission.NewAttributesRecord(d, nil, appsv1.SchemeGroupVersion.WithKind("Deployment"), "default", "web",
		schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "", admission.Create,
		&metav1.CreateOptions{}, false, &user.DefaultInfo{Name: "alice"})
}

func TestPolicyInForceFromTheFirstWrite(t *testing.T) {
	a := startWith(t, maxReplicas()...)
	if !a.Active() {
		t.Fatal("not Active with a policy in the cluster")
	}
	o := admission.NewObjectInterfacesFromScheme(scheme.Scheme)
	err := a.Validate(context.Background(), deploymentCreate(5), o)
	want := `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'max' with binding 'max-binding' denied request: failed expression: object.spec.replicas <= 3`
	if err == nil || err.Error() != want {
		t.Fatalf("the first write = %v, want %q", err, want)
	}
	if err := a.Validate(context.Background(), deploymentCreate(3), o); err != nil {
		t.Errorf("3 replicas: %v", err)
	}
}

func TestNoPluginsWithoutConfigurations(t *testing.T) {
	a := startWith(t)
	o := admission.NewObjectInterfacesFromScheme(scheme.Scheme)
	if err := a.Admit(context.Background(), deploymentCreate(5), o); err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(context.Background(), deploymentCreate(5), o); err != nil {
		t.Fatal(err)
	}
	if c := a.chain.Load(); c != nil {
		t.Errorf("upstream's plugins were built with no configuration or policy in the cluster")
	}
	if a.Active() {
		t.Error("Active with no configuration or policy: every write would build attributes for nothing")
	}
}

func TestClusterIPResolver(t *testing.T) {
	svc := func(name string, typ corev1.ServiceType, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, ExternalName: "hooks.example.com", Ports: []corev1.ServicePort{{Port: 443}}}}
	}
	a := startWith(t, svc("hook", corev1.ServiceTypeClusterIP, "10.43.0.9"), svc("headless", corev1.ServiceTypeClusterIP, corev1.ClusterIPNone),
		svc("ext", corev1.ServiceTypeExternalName, ""))
	// The lister fills as the informer syncs: started says so.
	<-a.started
	for _, tc := range []struct {
		name    string
		port    int32
		want    string
		wantErr string
	}{
		{"hook", 443, "https://10.43.0.9:443", ""},
		{"hook", 8443, "", "no service port 8443"},
		{"headless", 443, "", `cannot route to service with ClusterIP "None"`},
		{"ext", 443, "https://hooks.example.com:443", ""},
		{"missing", 443, "", "not found"},
	} {
		u, err := a.Services().ResolveEndpoint("ns", tc.name, tc.port)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s:%d: error %v, want %q", tc.name, tc.port, err, tc.wantErr)
			}
		case err != nil || u.String() != tc.want:
			t.Errorf("%s:%d = %v, %v; want %s", tc.name, tc.port, u, err, tc.want)
		}
	}
}
