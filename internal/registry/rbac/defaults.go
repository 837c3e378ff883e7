package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// defaultRoleBinding fills roleRef.apiGroup and the subjects' apiGroup as
// upstream's v1 defaults do, so `kubectl create rolebinding` output that
// omits them validates.
func defaultRoleBinding(obj runtime.Object) {
	if b, ok := obj.(*rbacv1.RoleBinding); ok {
		defaultBinding(&b.RoleRef, b.Subjects)
	}
}

func defaultClusterRoleBinding(obj runtime.Object) {
	if b, ok := obj.(*rbacv1.ClusterRoleBinding); ok {
		defaultBinding(&b.RoleRef, b.Subjects)
	}
}

func defaultBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup != "" {
			continue
		}
		switch s.Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			s.APIGroup = rbacv1.GroupName
		}
	}
}
