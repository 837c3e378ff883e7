package apiregistration

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiff-io/skiff/internal/registry"
)

func ptr[T any](v T) *T { return &v }

// validService is an aggregated APIService, as metrics-server registers.
func validService() *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.metrics.k8s.io"},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:               &apiregistrationv1.ServiceReference{Namespace: "kube-system", Name: "metrics-server", Port: ptr(int32(443))},
			Group:                 "metrics.k8s.io",
			Version:               "v1beta1",
			InsecureSkipTLSVerify: true,
			GroupPriorityMinimum:  100,
			VersionPriority:       100,
		},
	}
}

// validLocal is a local APIService, as the server registers for its own
// groups.
func validLocal() *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1.apps"},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:                "apps",
			Version:              "v1",
			GroupPriorityMinimum: 17800,
			VersionPriority:      15,
		},
	}
}

func resource(t *testing.T) *registry.Resource {
	t.Helper()
	rs := Resources()
	if len(rs) != 1 {
		t.Fatalf("%d resources, want 1", len(rs))
	}
	return rs[0]
}

func TestDescriptor(t *testing.T) {
	r := resource(t)
	if r.Name != "apiservices" || r.Singular != "apiservice" || r.Kind != "APIService" || r.Namespaced || !r.Status ||
		r.GroupVersion != apiregistrationv1.SchemeGroupVersion {
		t.Errorf("descriptor: %s %s %s namespaced %v status %v gv %v", r.Name, r.Singular, r.Kind, r.Namespaced, r.Status, r.GroupVersion)
	}
	if diff := cmp.Diff([]string{"api-extensions"}, r.Categories); diff != "" {
		t.Errorf("categories (-want +got):\n%s", diff)
	}
	if len(r.ShortNames) != 0 {
		t.Errorf("short names %v, want none", r.ShortNames)
	}
	if _, ok := r.New().(*apiregistrationv1.APIService); !ok {
		t.Errorf("New() = %T", r.New())
	}
	if _, ok := r.NewList().(*apiregistrationv1.APIServiceList); !ok {
		t.Errorf("NewList() = %T", r.NewList())
	}
	if diff := cmp.Diff(map[string]string{"metadata.name": "v1.apps", "metadata.namespace": ""}, map[string]string(r.Fields(validLocal()))); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

// The server's codecs and storage use client-go's scheme: the types must
// be in it, and go through protobuf as they are stored.
func TestScheme(t *testing.T) {
	gvk := apiregistrationv1.SchemeGroupVersion.WithKind("APIService")
	if _, err := scheme.Scheme.New(gvk); err != nil {
		t.Fatalf("scheme: %v", err)
	}
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	in := validService()
	in.TypeMeta = metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind}
	var buf bytes.Buffer
	if err := pb.Encode(in, &buf); err != nil {
		t.Fatalf("encode: %v", err)
	}
	out, _, err := pb.Decode(buf.Bytes(), nil, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("protobuf round trip (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	r := resource(t)
	s := validService()
	s.Spec.Service.Port = nil
	r.Strategy.Default(s)
	if s.Spec.Service.Port == nil || *s.Spec.Service.Port != 443 {
		t.Errorf("port = %v, want 443", s.Spec.Service.Port)
	}
	s.Spec.Service.Port = ptr(int32(8443))
	r.Strategy.Default(s)
	if *s.Spec.Service.Port != 8443 {
		t.Errorf("port = %d, want 8443 kept", *s.Spec.Service.Port)
	}
	l := validLocal()
	r.Strategy.Default(l)
	if l.Spec.Service != nil {
		t.Errorf("local service defaulted to %+v", l.Spec.Service)
	}
}

func TestPrepareForCreate(t *testing.T) {
	ctx := context.Background()
	r := resource(t)
	stale := apiregistrationv1.APIServiceStatus{Conditions: []apiregistrationv1.APIServiceCondition{
		{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse, Reason: "Made-up"},
	}}

	s := validService()
	s.Status = stale
	r.Strategy.PrepareForCreate(ctx, s)
	if len(s.Status.Conditions) != 0 {
		t.Errorf("service-backed: status %+v, want empty", s.Status)
	}
	if s.Generation != 0 {
		t.Errorf("generation %d, want 0 (left alone, as upstream)", s.Generation)
	}

	l := validLocal()
	l.Status = stale
	r.Strategy.PrepareForCreate(ctx, l)
	if len(l.Status.Conditions) != 1 {
		t.Fatalf("local: conditions %+v, want one", l.Status.Conditions)
	}
	c := l.Status.Conditions[0]
	if c.Type != apiregistrationv1.Available || c.Status != apiregistrationv1.ConditionTrue || c.Reason != "Local" ||
		c.Message != "Local APIServices are always available" || c.LastTransitionTime.IsZero() {
		t.Errorf("local: condition %+v", c)
	}
}

func TestPrepareForUpdate(t *testing.T) {
	ctx := context.Background()
	r := resource(t)
	old := validService()
	old.Generation = 4
	old.Status.Conditions = []apiregistrationv1.APIServiceCondition{{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue, Reason: "Passed"}}

	// The server has carried generation over from old before the
	// strategy runs; a spec change does not bump it.
	upd := old.DeepCopy()
	upd.Spec.VersionPriority = 200
	upd.Status = apiregistrationv1.APIServiceStatus{}
	r.Strategy.PrepareForUpdate(ctx, upd, old)
	if diff := cmp.Diff(old.Status, upd.Status); diff != "" {
		t.Errorf("main write changed status (-want +got):\n%s", diff)
	}
	if upd.Spec.VersionPriority != 200 || upd.Generation != 4 {
		t.Errorf("main write: versionPriority %d generation %d", upd.Spec.VersionPriority, upd.Generation)
	}
}

func TestPrepareForStatusUpdate(t *testing.T) {
	ctx := context.Background()
	r := resource(t)
	old := validService()
	old.Labels = map[string]string{"app": "metrics"}
	old.Annotations = map[string]string{"note": "old"}
	old.Finalizers = []string{"example.com/keep"}
	old.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "1"}}

	st := old.DeepCopy()
	st.Spec.Service = nil
	st.Spec.GroupPriorityMinimum = 1
	st.Labels = map[string]string{"new": "label"}
	st.Annotations = nil
	st.Finalizers = nil
	st.OwnerReferences = nil
	st.Status.Conditions = []apiregistrationv1.APIServiceCondition{
		{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse, Reason: "MissingEndpoints"},
	}
	want := old.DeepCopy()
	want.Status = st.Status

	r.Strategy.PrepareForStatusUpdate(ctx, st, old)
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("status write (-want +got):\n%s", diff)
	}
}
