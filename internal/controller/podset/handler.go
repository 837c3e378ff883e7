package podset

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// OwnerKey returns the "namespace/name" key of the pod's controller when
// that controller is of kind gvk (obj may be a delete tombstone).
func OwnerKey(obj any, gvk schema.GroupVersionKind) (string, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok || p == nil {
		return "", false
	}
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return "", false
	}
	return p.Namespace + "/" + ref.Name, true
}

// Handler is a pod informer handler for a controller of kind gvk: every
// pod event queues the pod's controlling owner (the old and the new one on
// an update), a new pod counts as an observed creation and a pod that is
// being deleted or gone as an observed deletion in exp.
func Handler(gvk schema.GroupVersionKind, exp *Expectations, enqueue func(key string)) cache.ResourceEventHandlerFuncs {
	deleted := func(key string, obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, _ := obj.(*corev1.Pod); p != nil {
			exp.DeletionObserved(key, p.Namespace+"/"+p.Name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key, ok := OwnerKey(obj, gvk); ok {
				exp.CreationObserved(key)
				enqueue(key)
			}
		},
		UpdateFunc: func(old, obj any) {
			if key, ok := OwnerKey(old, gvk); ok {
				enqueue(key)
			}
			if key, ok := OwnerKey(obj, gvk); ok {
				if p, _ := obj.(*corev1.Pod); p != nil && p.DeletionTimestamp != nil {
					deleted(key, p)
				}
				enqueue(key)
			}
		},
		DeleteFunc: func(obj any) {
			if key, ok := OwnerKey(obj, gvk); ok {
				deleted(key, obj)
				enqueue(key)
			}
		},
	}
}
