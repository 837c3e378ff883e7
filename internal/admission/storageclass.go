package admission

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// The annotations that mark a StorageClass the default, and the beta
// annotation that names a claim's class.
const (
	isDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	isDefaultClassBeta = "storageclass.beta.kubernetes.io/is-default-class"
	betaClaimClass     = "volume.beta.kubernetes.io/storage-class"
)

// DefaultStorageClass gives a new PersistentVolumeClaim that names no
// class (spec.storageClassName unset, not "") the default StorageClass,
// as upstream's DefaultStorageClass admission plugin does: the class
// annotated storageclass.kubernetes.io/is-default-class "true", the most
// recently created one when several are (then the name decides). With no
// default class the claim is left as it is.
type DefaultStorageClass struct {
	// Classes is the storageclasses store and Prefix its list prefix.
	Classes storage.Interface
	Prefix  string
}

func (d *DefaultStorageClass) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Create || req.Resource.GroupVersion.Group != "" || req.Resource.Name != "persistentvolumeclaims" || req.Sub != "" {
		return nil
	}
	pvc, ok := req.Obj.(*corev1.PersistentVolumeClaim)
	if !ok || d.Classes == nil || pvc.Spec.StorageClassName != nil || pvc.Annotations[betaClaimClass] != "" {
		return nil
	}
	list := &storagev1.StorageClassList{}
	if err := d.Classes.List(ctx, d.Prefix, storage.ListOptions{ResourceVersion: "0"}, list); err != nil {
		return apierrors.NewInternalError(fmt.Errorf("storage classes: %w", err))
	}
	if c := DefaultClass(list.Items); c != nil {
		name := c.Name
		pvc.Spec.StorageClassName = &name
	}
	return nil
}

// DefaultClass returns the default class among classes: of those marked
// default, the newest, then the first by name; nil when none is marked.
func DefaultClass(classes []storagev1.StorageClass) *storagev1.StorageClass {
	var out *storagev1.StorageClass
	for i := range classes {
		c := &classes[i]
		if c.Annotations[isDefaultClass] != "true" && c.Annotations[isDefaultClassBeta] != "true" {
			continue
		}
		switch {
		case out == nil,
			c.CreationTimestamp.After(out.CreationTimestamp.Time),
			c.CreationTimestamp.Equal(&out.CreationTimestamp) && c.Name < out.Name:
			out = c
		}
	}
	return out
}
