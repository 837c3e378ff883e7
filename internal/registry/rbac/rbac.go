// Package rbac holds the registry of the rbac.authorization.k8s.io API
// group: roles and cluster roles (what may be done) and their bindings (who
// may do it). Authorization itself lives in the API server; this package
// only keeps the objects well formed.
package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of rbac.authorization.k8s.io/v1.
func Resources() []*registry.Resource {
	gv := rbacv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GroupVersion: gv, Name: "roles", Singular: "role", Kind: "Role", Namespaced: true,
			New:     func() runtime.Object { return &rbacv1.Role{} },
			NewList: func() runtime.Object { return &rbacv1.RoleList{} },
			Strategy: registry.Strategy{
				NameValidation: registry.NameIsPathSegment,
				Validate:       validateRole,
				ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList { return validateRole(obj) },
			},
			Table: roleTable,
		},
		{
			GroupVersion: gv, Name: "rolebindings", Singular: "rolebinding", Kind: "RoleBinding", Namespaced: true,
			New:     func() runtime.Object { return &rbacv1.RoleBinding{} },
			NewList: func() runtime.Object { return &rbacv1.RoleBindingList{} },
			Strategy: registry.Strategy{
				NameValidation: registry.NameIsPathSegment,
				Default:        defaultRoleBinding,
				Validate:       validateRoleBinding,
				ValidateUpdate: validateRoleBindingUpdate,
			},
			Table: roleBindingTable,
		},
		{
			GroupVersion: gv, Name: "clusterroles", Singular: "clusterrole", Kind: "ClusterRole", Namespaced: false,
			New:     func() runtime.Object { return &rbacv1.ClusterRole{} },
			NewList: func() runtime.Object { return &rbacv1.ClusterRoleList{} },
			Strategy: registry.Strategy{
				NameValidation: registry.NameIsPathSegment,
				Validate:       validateClusterRole,
				ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList { return validateClusterRole(obj) },
			},
			Table: clusterRoleTable,
		},
		{
			GroupVersion: gv, Name: "clusterrolebindings", Singular: "clusterrolebinding", Kind: "ClusterRoleBinding", Namespaced: false,
			New:     func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
			NewList: func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },
			Strategy: registry.Strategy{
				NameValidation: registry.NameIsPathSegment,
				Default:        defaultClusterRoleBinding,
				Validate:       validateClusterRoleBinding,
				ValidateUpdate: validateClusterRoleBindingUpdate,
			},
			Table: clusterRoleBindingTable,
		},
	}
}
