// Package replication is the replication manager: it keeps the pods and
// status of core/v1 ReplicationControllers. As upstream's
// pkg/controller/replication, it is the ReplicaSet controller
// (internal/controller/replicaset) run over ReplicationControllers: the
// Source here shows each one to it as the ReplicaSet it would be (the
// selector as matchLabels, the template by value) and writes the status it
// computes back to the ReplicationController. Pods, events and the
// ReplicaFailure condition therefore behave exactly as for ReplicaSets;
// RCs have no status.terminatingReplicas, which the ReplicaSet controller
// does not report either.
package replication

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/replicaset"
)

// Name is the controller's name (kube-controller-manager's --controllers
// name), in logs and the workqueue metrics; EventComponent the source of
// its events, as upstream's.
const (
	Name           = "replicationcontroller"
	EventComponent = "replication-controller"
)

// New builds the replication manager over factory's ReplicationController
// and Pod informers (registering them and their handlers); client writes
// pods and ReplicationController status. The caller starts the factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...replicaset.Options) (*replicaset.Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	inf := factory.Core().V1().ReplicationControllers()
	src := controllers{client: client, informer: inf.Informer(), lister: inf.Lister()}
	return replicaset.NewFor(Name, src, client, factory, recorder, opts...)
}

// controllers is the replicaset.Source of ReplicationControllers.
type controllers struct {
	client   kubernetes.Interface
	informer cache.SharedIndexInformer
	lister   corelisters.ReplicationControllerLister
}

func (controllers) GroupVersionKind() schema.GroupVersionKind {
	return corev1.SchemeGroupVersion.WithKind("ReplicationController")
}

func (s controllers) Informer() cache.SharedIndexInformer { return s.informer }

func (s controllers) Get(namespace, name string) (*appsv1.ReplicaSet, error) {
	rc, err := s.lister.ReplicationControllers(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return toReplicaSet(rc), nil
}

func (s controllers) List(namespace string) ([]*appsv1.ReplicaSet, error) {
	rcs, err := s.lister.ReplicationControllers(namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1.ReplicaSet, len(rcs))
	for i, rc := range rcs {
		out[i] = toReplicaSet(rc)
	}
	return out, nil
}

func (s controllers) Fetch(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error) {
	rc, err := s.client.CoreV1().ReplicationControllers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return toReplicaSet(rc), nil
}

func (s controllers) UpdateStatus(ctx context.Context, rs *appsv1.ReplicaSet) error {
	_, err := s.client.CoreV1().ReplicationControllers(rs.Namespace).UpdateStatus(ctx, fromReplicaSet(rs), metav1.UpdateOptions{})
	return err
}
