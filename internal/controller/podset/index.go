package podset

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// Index names shared by every controller on the shared informers. One copy
// of each index lives on an informer however many controllers use it.
const (
	// IndexByControllerUID indexes an object (a pod, a ControllerRevision,
	// any metav1.Object) by the UID of its controller reference.
	IndexByControllerUID = "podset.skiff.io/controller-uid"
	// IndexOrphansByNamespace indexes a pod without a controller
	// reference by its namespace.
	IndexOrphansByNamespace = "podset.skiff.io/orphans"
)

// AddControllerUIDIndex registers IndexByControllerUID on inf unless it is
// already there (another controller registered it). Call it before the
// informer starts; concurrent calls on one informer are not supported.
func AddControllerUIDIndex(inf cache.SharedIndexInformer) error {
	return addIndex(inf, IndexByControllerUID, indexByControllerUID)
}

// AddOrphanIndex registers IndexOrphansByNamespace on a pod informer
// unless it is already there, under the same rules as
// AddControllerUIDIndex.
func AddOrphanIndex(inf cache.SharedIndexInformer) error {
	return addIndex(inf, IndexOrphansByNamespace, indexOrphanPod)
}

func addIndex(inf cache.SharedIndexInformer, name string, fn cache.IndexFunc) error {
	if inf == nil {
		return fmt.Errorf("index %s: nil informer", name)
	}
	if _, ok := inf.GetIndexer().GetIndexers()[name]; ok {
		return nil
	}
	if err := inf.AddIndexers(cache.Indexers{name: fn}); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	return nil
}

// ControlledBy returns the objects in indexer whose controller has uid,
// from IndexByControllerUID.
func ControlledBy(indexer cache.Indexer, uid types.UID) ([]any, error) {
	if indexer == nil {
		return nil, nil
	}
	objs, err := indexer.ByIndex(IndexByControllerUID, string(uid))
	if err != nil {
		return nil, fmt.Errorf("objects controlled by %s: %w", uid, err)
	}
	return objs, nil
}

// PodsControlledBy returns the pods in indexer whose controller has uid.
func PodsControlledBy(indexer cache.Indexer, uid types.UID) ([]*corev1.Pod, error) {
	objs, err := ControlledBy(indexer, uid)
	return pods(objs), err
}

// OrphanPods returns the pods in namespace that have no controller, from
// IndexOrphansByNamespace.
func OrphanPods(indexer cache.Indexer, namespace string) ([]*corev1.Pod, error) {
	if indexer == nil {
		return nil, nil
	}
	objs, err := indexer.ByIndex(IndexOrphansByNamespace, namespace)
	if err != nil {
		return nil, fmt.Errorf("orphan pods in %s: %w", namespace, err)
	}
	return pods(objs), nil
}

func pods(objs []any) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p != nil {
			out = append(out, p)
		}
	}
	return out
}

func indexByControllerUID(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok || m == nil {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

func indexOrphanPod(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p == nil || metav1.GetControllerOfNoCopy(p) != nil {
		return nil, nil
	}
	return []string{p.Namespace}, nil
}
