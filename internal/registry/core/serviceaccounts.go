package core

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// ServiceAccounts returns the descriptor of core/v1 serviceaccounts ("sa").
// Upstream checks nothing beyond metadata, and neither does skiff. The
// token subresource (serviceaccounts/token) is the API server's.
func ServiceAccounts() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "serviceaccounts",
		Singular:     "serviceaccount",
		Kind:         "ServiceAccount",
		ShortNames:   []string{"sa"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList:      func() runtime.Object { return &corev1.ServiceAccountList{} },
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Secrets", Type: "string", Description: corev1.ServiceAccount{}.SwaggerDoc()["secrets"]},
				registry.AgeColumn,
			},
			Row: func(obj runtime.Object) []interface{} {
				sa, ok := obj.(*corev1.ServiceAccount)
				if !ok {
					return []interface{}{"", int64(0), ""}
				}
				return []interface{}{sa.Name, int64(len(sa.Secrets)), registry.Age(sa)}
			},
		},
	}
}
