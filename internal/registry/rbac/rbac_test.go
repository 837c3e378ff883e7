package rbac

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
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
	want := map[string]bool{"roles": true, "rolebindings": true, "clusterroles": false, "clusterrolebindings": false}
	for _, r := range Resources() {
		ns, ok := want[r.Name]
		if !ok || r.Namespaced != ns {
			t.Errorf("%s: namespaced=%v, want %v (known %v)", r.Name, r.Namespaced, ns, ok)
		}
		if got := r.Strategy.NameValidation("system:controller:x", false); len(got) != 0 {
			t.Errorf("%s: colon name rejected: %v", r.Name, got)
		}
		if got := r.Strategy.NameValidation("a/b", false); len(got) == 0 {
			t.Errorf("%s: slash name accepted", r.Name)
		}
	}
}

func TestValidateRoles(t *testing.T) {
	rule := func(verbs, groups, resources, urls []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, NonResourceURLs: urls}
	}
	get, core, pods, healthz := []string{"get"}, []string{""}, []string{"pods"}, []string{"/healthz"}
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"role ok", &rbacv1.Role{Rules: []rbacv1.PolicyRule{rule(get, core, pods, nil)}}, nil},
		{"role no verbs", &rbacv1.Role{Rules: []rbacv1.PolicyRule{rule(nil, core, pods, nil)}},
			[]string{"FieldValueRequired rules[0].verbs"}},
		{"role no groups or resources", &rbacv1.Role{Rules: []rbacv1.PolicyRule{rule(get, nil, nil, nil)}},
			[]string{"FieldValueRequired rules[0].apiGroups", "FieldValueRequired rules[0].resources"}},
		{"role non-resource url", &rbacv1.Role{Rules: []rbacv1.PolicyRule{rule(get, nil, nil, healthz)}},
			[]string{"FieldValueInvalid rules[0].nonResourceURLs"}},
		{"clusterrole non-resource url", &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{rule(get, nil, nil, healthz)}}, nil},
		{"clusterrole mixed", &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{rule(get, core, pods, healthz)}},
			[]string{"FieldValueInvalid rules[0].nonResourceURLs"}},
		{"clusterrole empty aggregation", &rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{}},
			[]string{"FieldValueRequired aggregationRule.clusterRoleSelectors"}},
		{"clusterrole aggregation", &rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{
			ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rbac.example.com/aggregate": "true"}}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs field.ErrorList
			switch tt.obj.(type) {
			case *rbacv1.Role:
				errs = resource(t, "roles").Strategy.Validate(tt.obj)
			case *rbacv1.ClusterRole:
				errs = resource(t, "clusterroles").Strategy.Validate(tt.obj)
			}
			if diff := cmp.Diff(tt.want, errFields(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultAndValidateBindings(t *testing.T) {
	ref := func(kind string) rbacv1.RoleRef { return rbacv1.RoleRef{Kind: kind, Name: "view"} }
	user := rbacv1.Subject{Kind: "User", Name: "alice"}
	sa := rbacv1.Subject{Kind: "ServiceAccount", Name: "default"}
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"rb role", &rbacv1.RoleBinding{RoleRef: ref("Role"), Subjects: []rbacv1.Subject{user, sa}}, nil},
		{"rb clusterrole", &rbacv1.RoleBinding{RoleRef: ref("ClusterRole")}, nil},
		{"rb bad kind", &rbacv1.RoleBinding{RoleRef: ref("Pod")}, []string{"FieldValueNotSupported roleRef.kind"}},
		{"rb bad group", &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: "apps", Kind: "Role", Name: "x"}},
			[]string{"FieldValueNotSupported roleRef.apiGroup"}},
		{"rb no name", &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role"}}, []string{"FieldValueRequired roleRef.name"}},
		{"rb bad subject", &rbacv1.RoleBinding{RoleRef: ref("Role"), Subjects: []rbacv1.Subject{{Kind: "Robot", Name: "r"}, {Kind: "User"}}},
			[]string{"FieldValueNotSupported subjects[0].kind", "FieldValueRequired subjects[1].name"}},
		{"rb sa with group", &rbacv1.RoleBinding{RoleRef: ref("Role"), Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "x", APIGroup: "rbac.authorization.k8s.io"}}},
			[]string{"FieldValueNotSupported subjects[0].apiGroup"}},
		{"crb role", &rbacv1.ClusterRoleBinding{RoleRef: ref("Role")}, []string{"FieldValueNotSupported roleRef.kind"}},
		{"crb sa needs namespace", &rbacv1.ClusterRoleBinding{RoleRef: ref("ClusterRole"), Subjects: []rbacv1.Subject{sa}},
			[]string{"FieldValueRequired subjects[0].namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "rolebindings")
			if _, ok := tt.obj.(*rbacv1.ClusterRoleBinding); ok {
				r = resource(t, "clusterrolebindings")
			}
			r.Strategy.Default(tt.obj)
			if diff := cmp.Diff(tt.want, errFields(r.Strategy.Validate(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultBinding(t *testing.T) {
	b := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "x"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "u"}, {Kind: "Group", Name: "g"}, {Kind: "ServiceAccount", Name: "s"}}}
	defaultRoleBinding(b)
	want := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "x"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "u", APIGroup: "rbac.authorization.k8s.io"},
			{Kind: "Group", Name: "g", APIGroup: "rbac.authorization.k8s.io"}, {Kind: "ServiceAccount", Name: "s"}}}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("defaulted (-want +got):\n%s", diff)
	}
}

func TestValidateBindingUpdate(t *testing.T) {
	old := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "a"}}
	same := old.DeepCopy()
	same.Subjects = []rbacv1.Subject{{Kind: "User", Name: "u", APIGroup: rbacv1.GroupName}}
	changed := old.DeepCopy()
	changed.RoleRef.Name = "b"
	r := resource(t, "rolebindings")
	if errs := r.Strategy.ValidateUpdate(same, old); len(errs) != 0 {
		t.Errorf("subject change rejected: %v", errs)
	}
	if diff := cmp.Diff([]string{"FieldValueInvalid roleRef"}, errFields(r.Strategy.ValidateUpdate(changed, old))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	cold := &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "a"}}
	cnew := cold.DeepCopy()
	cnew.RoleRef.Name = "b"
	if diff := cmp.Diff([]string{"FieldValueInvalid roleRef"}, errFields(resource(t, "clusterrolebindings").Strategy.ValidateUpdate(cnew, cold))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestTables(t *testing.T) {
	created := metav1.NewTime(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	subjects := []rbacv1.Subject{{Kind: "User", Name: "alice"}, {Kind: "User", Name: "bob"}, {Kind: "Group", Name: "devs"},
		{Kind: "ServiceAccount", Namespace: "kube-system", Name: "default"}}
	tests := []struct {
		resource string
		obj      runtime.Object
		want     []interface{}
	}{
		{"roles", &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", CreationTimestamp: created}},
			[]interface{}{"reader", "2024-05-01T12:00:00Z"}},
		{"clusterroles", &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin", CreationTimestamp: created}},
			[]interface{}{"admin", "2024-05-01T12:00:00Z"}},
		{"rolebindings", &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rb"}, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "reader"}, Subjects: subjects},
			[]interface{}{"rb", "Role/reader", "<unknown>", "alice, bob", "devs", "kube-system:default"}},
		{"clusterrolebindings", &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "crb"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "admin"}},
			[]interface{}{"crb", "ClusterRole/admin", "<unknown>", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			tbl := resource(t, tt.resource).Table
			row := tbl.Row(tt.obj)
			if diff := cmp.Diff(tt.want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if len(row) != len(tbl.Columns) {
				t.Errorf("%d cells for %d columns", len(row), len(tbl.Columns))
			}
		})
	}
}
