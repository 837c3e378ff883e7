package customresource

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// scaleSubresource reads and writes the scale subresource through the
// CRD's JSON paths, as upstream: missing replicas read as 0, and so do
// replicas of the wrong type (upstream answers 500 there; Validate refuses
// such objects before they are stored).
func (v *version) scaleSubresource() *registry.Scale {
	if v.scale == nil {
		return nil
	}
	specPath := splitPath(v.scale.SpecReplicasPath)
	statusPath := splitPath(v.scale.StatusReplicasPath)
	var selectorPath []string
	if v.scale.LabelSelectorPath != nil && *v.scale.LabelSelectorPath != "" {
		selectorPath = splitPath(*v.scale.LabelSelectorPath)
	}
	return &registry.Scale{
		Get: func(obj runtime.Object) (specReplicas, statusReplicas int32, selector string) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok || u.Object == nil {
				return 0, 0, ""
			}
			spec, _, _ := unstructured.NestedInt64(u.Object, specPath...)
			status, _, _ := unstructured.NestedInt64(u.Object, statusPath...)
			if selectorPath != nil {
				selector, _, _ = unstructured.NestedString(u.Object, selectorPath...)
			}
			return int32(spec), int32(status), selector
		},
		SetReplicas: func(obj runtime.Object, replicas int32) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			if u.Object == nil {
				u.Object = map[string]interface{}{}
			}
			// This fails only when a field on the way is not an object:
			// the write then leaves the object as it is, and Validate
			// reports the path.
			_ = unstructured.SetNestedField(u.Object, int64(replicas), specPath...)
		},
	}
}
