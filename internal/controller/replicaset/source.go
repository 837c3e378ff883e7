package replicaset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
)

// Source holds the objects a Controller reconciles and shows them to it as
// ReplicaSets: the ReplicaSets themselves (ReplicaSets), or objects of
// another kind that upstream manages with this same controller
// (ReplicationControllers, internal/controller/replication). The
// ReplicaSets it returns may share memory with its cache: callers must not
// modify them (DeepCopy first).
type Source interface {
	// GroupVersionKind is the kind of the objects: the controller
	// references on their pods name it, and events are recorded on it.
	GroupVersionKind() schema.GroupVersionKind
	// Informer is the objects' shared informer. Its event handlers
	// receive the objects in their own type.
	Informer() cache.SharedIndexInformer
	// Get returns the cached object namespace/name, or an error for which
	// apierrors.IsNotFound holds when the cache does not have it.
	Get(namespace, name string) (*appsv1.ReplicaSet, error)
	// List returns the cached objects of namespace.
	List(namespace string) ([]*appsv1.ReplicaSet, error)
	// Fetch reads the object namespace/name from the API server, not the
	// cache.
	Fetch(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error)
	// UpdateStatus writes rs.Status as the status of the object rs stands
	// for. rs is one Get returned (copied, status changed): its
	// resourceVersion is the precondition, so a stale write fails with a
	// conflict.
	UpdateStatus(ctx context.Context, rs *appsv1.ReplicaSet) error
}

// ReplicaSets is the Source of apps/v1 ReplicaSets, read through the
// ReplicaSet informer of factory (registered on it by this call) and
// written with client.
func ReplicaSets(client kubernetes.Interface, factory informers.SharedInformerFactory) Source {
	inf := factory.Apps().V1().ReplicaSets()
	return replicaSets{client: client, informer: inf.Informer(), lister: inf.Lister()}
}

type replicaSets struct {
	client   kubernetes.Interface
	informer cache.SharedIndexInformer
	lister   appslisters.ReplicaSetLister
}

func (replicaSets) GroupVersionKind() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}

func (s replicaSets) Informer() cache.SharedIndexInformer { return s.informer }

func (s replicaSets) Get(namespace, name string) (*appsv1.ReplicaSet, error) {
	return s.lister.ReplicaSets(namespace).Get(name)
}

func (s replicaSets) List(namespace string) ([]*appsv1.ReplicaSet, error) {
	return s.lister.ReplicaSets(namespace).List(labels.Everything())
}

func (s replicaSets) Fetch(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error) {
	return s.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s replicaSets) UpdateStatus(ctx context.Context, rs *appsv1.ReplicaSet) error {
	_, err := s.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
	return err
}
