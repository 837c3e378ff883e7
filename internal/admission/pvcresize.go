package admission

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

var claimsGR = schema.GroupResource{Resource: "persistentvolumeclaims"}

// PersistentVolumeClaimResize refuses an update of a
// PersistentVolumeClaim that raises spec.resources.requests.storage
// unless the claim is Bound and names, before and after the update, the
// same StorageClass, one that exists and sets allowVolumeExpansion, as
// upstream's PersistentVolumeClaimResize validating plugin does, with its
// messages and 403 Forbidden. Lowering the request, or raising another
// resource, is left to validation.
//
// It belongs with the validating plugins: it reads the update as the
// client finally made it and changes nothing.
type PersistentVolumeClaimResize struct {
	// Classes is the storageclasses store and Prefix its key prefix (a
	// class is at Prefix+name).
	Classes storage.Interface
	Prefix  string
}

func (p *PersistentVolumeClaimResize) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Update || req.Resource.GroupVersion.Group != "" || req.Resource.Name != "persistentvolumeclaims" || req.Sub != "" {
		return nil
	}
	pvc, ok := req.Obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	old, ok := req.Old.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	newSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	oldSize := old.Spec.Resources.Requests[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) <= 0 {
		return nil
	}
	if old.Status.Phase != corev1.ClaimBound {
		// Upstream's wording, capital letter and all: clients match it.
		return apierrors.NewForbidden(claimsGR, pvc.Name, errors.New("Only bound persistent volume claims can be expanded"))
	}
	allowed, err := p.allowsExpansion(ctx, claimClass(pvc), claimClass(old))
	if err != nil {
		return err
	}
	if !allowed {
		return apierrors.NewForbidden(claimsGR, pvc.Name, errors.New("only dynamically provisioned pvc can be resized and "+
			"the storageclass that provisions the pvc must support resize"))
	}
	return nil
}

// allowsExpansion reports whether the claim's class, unchanged by the
// update, exists and allows volume expansion. An error is returned only
// when the store fails; a missing class is a plain no, as upstream's
// lister miss is.
func (p *PersistentVolumeClaimResize) allowsExpansion(ctx context.Context, class, oldClass string) (bool, error) {
	if class == "" || class != oldClass || p.Classes == nil {
		return false, nil
	}
	sc := &storagev1.StorageClass{}
	key := p.Prefix + class
	// The cache first; a class it has not seen yet is looked up in etcd.
	err := p.Classes.Get(ctx, key, "0", sc)
	if errors.Is(err, storage.ErrNotFound) {
		err = p.Classes.Get(ctx, key, "", sc)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, apierrors.NewInternalError(fmt.Errorf("storage class %q: %w", class, err))
	}
	return sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion, nil
}

// claimClass is the claim's StorageClass name: the beta annotation when
// set, else spec.storageClassName, "" for none (upstream's
// GetPersistentVolumeClaimClass).
func claimClass(pvc *corev1.PersistentVolumeClaim) string {
	if c, ok := pvc.Annotations[betaClaimClass]; ok {
		return c
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}
