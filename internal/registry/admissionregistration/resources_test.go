package admissionregistration

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

func ptr[T any](v T) *T { return &v }

// errFields renders errs as "Type field" for comparison.
func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

// checkErrs compares errs with want ("Type field" each) and, when detail
// is set, requires one of them to say it.
func checkErrs(t *testing.T, errs field.ErrorList, want []string, detail string) {
	t.Helper()
	if diff := cmp.Diff(want, errFields(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\n%v", diff, errs)
	}
	if detail == "" {
		return
	}
	for _, e := range errs {
		if strings.Contains(e.Detail, detail) {
			return
		}
	}
	t.Errorf("no error says %q: %v", detail, errs)
}

func resource(t *testing.T, name string) *registry.Resource {
	t.Helper()
	for _, r := range Resources() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource %q", name)
	return nil
}

func TestDescriptors(t *testing.T) {
	want := map[string]struct {
		singular, kind string
		status         bool
	}{
		"mutatingwebhookconfigurations":     {"mutatingwebhookconfiguration", "MutatingWebhookConfiguration", false},
		"validatingwebhookconfigurations":   {"validatingwebhookconfiguration", "ValidatingWebhookConfiguration", false},
		"validatingadmissionpolicies":       {"validatingadmissionpolicy", "ValidatingAdmissionPolicy", true},
		"validatingadmissionpolicybindings": {"validatingadmissionpolicybinding", "ValidatingAdmissionPolicyBinding", false},
		"mutatingadmissionpolicies":         {"mutatingadmissionpolicy", "MutatingAdmissionPolicy", false},
		"mutatingadmissionpolicybindings":   {"mutatingadmissionpolicybinding", "MutatingAdmissionPolicyBinding", false},
	}
	rs := Resources()
	if len(rs) != len(want) {
		t.Fatalf("%d resources, want %d", len(rs), len(want))
	}
	for _, r := range rs {
		w, ok := want[r.Name]
		if !ok {
			t.Errorf("unexpected resource %s", r.Name)
			continue
		}
		if r.Singular != w.singular || r.Kind != w.kind || r.Status != w.status || r.Namespaced || r.GroupVersion != admissionregistrationv1.SchemeGroupVersion {
			t.Errorf("%s: singular %s kind %s status %v namespaced %v gv %v", r.Name, r.Singular, r.Kind, r.Status, r.Namespaced, r.GroupVersion)
		}
		if diff := cmp.Diff([]string{"api-extensions"}, r.Categories); diff != "" {
			t.Errorf("%s categories (-want +got):\n%s", r.Name, diff)
		}
		if r.New() == nil || r.NewList() == nil {
			t.Errorf("%s: New or NewList nil", r.Name)
		}
		if r.Table == nil || r.Strategy.Default == nil || r.Strategy.Validate == nil || r.Strategy.ValidateUpdate == nil {
			t.Errorf("%s: table or strategy missing", r.Name)
		}
	}
}

func TestWebhookGeneration(t *testing.T) {
	ctx := context.Background()
	r := resource(t, "mutatingwebhookconfigurations")
	c := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Generation: 7}}
	r.Strategy.PrepareForCreate(ctx, c)
	if c.Generation != 1 {
		t.Errorf("generation after create = %d, want 1", c.Generation)
	}

	old := validMutating()
	old.Generation = 3
	same := old.DeepCopy()
	same.Generation = 9
	same.Labels = map[string]string{"a": "b"}
	r.Strategy.PrepareForUpdate(ctx, same, old)
	if same.Generation != 3 {
		t.Errorf("generation after a metadata change = %d, want 3", same.Generation)
	}
	changed := old.DeepCopy()
	changed.Webhooks[0].TimeoutSeconds = ptr(int32(5))
	r.Strategy.PrepareForUpdate(ctx, changed, old)
	if changed.Generation != 4 {
		t.Errorf("generation after a webhook change = %d, want 4", changed.Generation)
	}

	v := resource(t, "validatingwebhookconfigurations")
	vc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	v.Strategy.PrepareForCreate(ctx, vc)
	if vc.Generation != 1 {
		t.Errorf("validating: generation after create = %d, want 1", vc.Generation)
	}
	vold := validValidating()
	vold.Generation = 2
	vnew := vold.DeepCopy()
	vnew.Webhooks = append(vnew.Webhooks, vnew.Webhooks[0])
	vnew.Webhooks[1].Name = "other.example.com"
	v.Strategy.PrepareForUpdate(ctx, vnew, vold)
	if vnew.Generation != 3 {
		t.Errorf("validating: generation after a webhook change = %d, want 3", vnew.Generation)
	}
}

// The policy's create and update preparation are the registry's defaults;
// this pins that they do upstream's work on this type.
func TestPolicyPrepare(t *testing.T) {
	ctx := context.Background()
	r := resource(t, "validatingadmissionpolicies")
	if r.Strategy.PrepareForCreate != nil || r.Strategy.PrepareForUpdate != nil {
		t.Fatal("policy strategy no longer uses the registry's defaults; update this test")
	}
	p := validPolicy()
	p.Status.ObservedGeneration = 5
	registry.DefaultPrepareForCreate(ctx, p)
	if p.Generation != 1 || p.Status.ObservedGeneration != 0 {
		t.Errorf("after create: generation %d, status %+v", p.Generation, p.Status)
	}

	old := validPolicy()
	old.Generation = 2
	old.Status.ObservedGeneration = 2
	upd := old.DeepCopy()
	upd.Status = admissionregistrationv1.ValidatingAdmissionPolicyStatus{ObservedGeneration: 9}
	upd.Spec.Validations[0].Message = "changed"
	registry.DefaultPrepareForUpdate(ctx, upd, old)
	if upd.Generation != 3 || upd.Status.ObservedGeneration != 2 {
		t.Errorf("after spec update: generation %d, status %+v", upd.Generation, upd.Status)
	}

	st := old.DeepCopy()
	st.Spec.Validations = nil
	st.Labels = map[string]string{"new": "label"}
	st.Annotations = map[string]string{"new": "annotation"}
	st.Generation = 40
	st.Status.ObservedGeneration = 3
	r.Strategy.PrepareForStatusUpdate(ctx, st, old)
	if diff := cmp.Diff(old.Spec, st.Spec); diff != "" {
		t.Errorf("status write changed spec (-want +got):\n%s", diff)
	}
	if st.Labels != nil || st.Annotations != nil || st.Generation != 2 || st.Status.ObservedGeneration != 3 {
		t.Errorf("status write: labels %v annotations %v generation %d status %+v", st.Labels, st.Annotations, st.Generation, st.Status)
	}
}
