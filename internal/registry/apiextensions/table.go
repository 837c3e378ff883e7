package apiextensions

import (
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// table is upstream's `kubectl get crd` (1.37): NAME SCOPE VERSIONS
// CREATED AT, and with -o wide GROUP KIND SHORTNAMES ESTABLISHED. CREATED
// AT is an RFC 3339 time in UTC, not an age.
var table = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Scope", Type: "string", Description: "Cluster/Namespaced"},
		{Name: "Versions", Type: "string", Description: "Served versions"},
		{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
		{Name: "Group", Type: "string", Priority: 1, Description: "API group"},
		{Name: "Kind", Type: "string", Priority: 1, Description: "CustomResource kind"},
		{Name: "ShortNames", Type: "string", Priority: 1, Description: "Short names"},
		{Name: "Established", Type: "boolean", Priority: 1, Description: "Established status"},
	},
	Row: func(obj runtime.Object) []interface{} {
		crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			return nil
		}
		return []interface{}{
			crd.Name,
			string(crd.Spec.Scope),
			servedVersions(crd),
			crd.CreationTimestamp.UTC().Format(time.RFC3339),
			crd.Spec.Group,
			crd.Spec.Names.Kind,
			strings.Join(crd.Spec.Names.ShortNames, ","),
			established(crd),
		}
	},
}

// servedVersions is the VERSIONS column: the served versions, sorted, the
// storage version marked ("v1(storage),v1beta1").
func servedVersions(crd *apiextensionsv1.CustomResourceDefinition) string {
	var vs []string
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		if v.Storage {
			vs = append(vs, v.Name+"(storage)")
		} else {
			vs = append(vs, v.Name)
		}
	}
	sort.Strings(vs)
	return strings.Join(vs, ",")
}

// established is the ESTABLISHED column: whether any Established
// condition is True, as upstream's table reads it.
func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
