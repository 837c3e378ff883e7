package admission

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// ImmortalNamespaces may not be deleted, as upstream.
var ImmortalNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// NamespaceLifecycle rejects creating objects in a namespace that does not
// exist (404) or is being deleted (403), and deleting the system
// namespaces.
type NamespaceLifecycle struct {
	// Namespaces is the namespaces store; Key its key function.
	Namespaces storage.Interface
	Key        func(name string) string
}

var namespacesGR = schema.GroupResource{Resource: "namespaces"}

func (n *NamespaceLifecycle) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	isNamespace := req.Resource.GroupVersion.Group == "" && req.Resource.Name == "namespaces"
	if req.Operation == apiserver.Delete {
		if isNamespace && ImmortalNamespaces[req.Name] {
			return apierrors.NewForbidden(namespacesGR, req.Name, fmt.Errorf("this namespace may not be deleted"))
		}
		return nil
	}
	if req.Operation != apiserver.Create || isNamespace || !req.Resource.Namespaced || req.Sub != "" {
		return nil
	}
	ns := &corev1.Namespace{}
	// The cache first; a namespace created a moment ago may not be there
	// yet, so a miss is checked against etcd.
	err := n.Namespaces.Get(ctx, n.Key(req.Namespace), "0", ns)
	if errors.Is(err, storage.ErrNotFound) {
		err = n.Namespaces.Get(ctx, n.Key(req.Namespace), "", ns)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return apierrors.NewNotFound(namespacesGR, req.Namespace)
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("namespace %q: %w", req.Namespace, err))
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(schema.GroupResource{Group: req.Resource.GroupVersion.Group, Resource: req.Resource.Name}, req.Name,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", req.Namespace))
	}
	return nil
}
