package rbac

import (
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// createdAtColumn: roles print their creation time, not an age.
var createdAtColumn = metav1.TableColumnDefinition{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}

func createdAt(t metav1.Time) string {
	return t.Time.UTC().Format(time.RFC3339)
}

var roleTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{registry.NameColumn, createdAtColumn},
	Row: func(obj runtime.Object) []interface{} {
		r, ok := obj.(*rbacv1.Role)
		if !ok {
			return nil
		}
		return []interface{}{r.Name, createdAt(r.CreationTimestamp)}
	},
}

var clusterRoleTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{registry.NameColumn, createdAtColumn},
	Row: func(obj runtime.Object) []interface{} {
		r, ok := obj.(*rbacv1.ClusterRole)
		if !ok {
			return nil
		}
		return []interface{}{r.Name, createdAt(r.CreationTimestamp)}
	},
}

func bindingColumns(kind string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Role", Type: "string", Description: rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]},
		registry.AgeColumn,
		{Name: "Users", Type: "string", Priority: 1, Description: "Users in the " + kind},
		{Name: "Groups", Type: "string", Priority: 1, Description: "Groups in the " + kind},
		{Name: "ServiceAccounts", Type: "string", Priority: 1, Description: "ServiceAccounts in the " + kind},
	}
}

var roleBindingTable = &registry.Table{
	Columns: bindingColumns("roleBinding"),
	Row: func(obj runtime.Object) []interface{} {
		b, ok := obj.(*rbacv1.RoleBinding)
		if !ok {
			return nil
		}
		return bindingRow(b, b.RoleRef, b.Subjects)
	},
}

var clusterRoleBindingTable = &registry.Table{
	Columns: bindingColumns("clusterRoleBinding"),
	Row: func(obj runtime.Object) []interface{} {
		b, ok := obj.(*rbacv1.ClusterRoleBinding)
		if !ok {
			return nil
		}
		return bindingRow(b, b.RoleRef, b.Subjects)
	},
}

func bindingRow(obj metav1.Object, ref rbacv1.RoleRef, subjects []rbacv1.Subject) []interface{} {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+":"+s.Name)
		}
	}
	return []interface{}{obj.GetName(), ref.Kind + "/" + ref.Name, registry.Since(obj.GetCreationTimestamp()),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}
}
