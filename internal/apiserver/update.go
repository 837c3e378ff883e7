package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// dryRunResult aborts a storage update on a dry run, carrying the object
// that would have been written.
type dryRunResult struct{ obj runtime.Object }

func (dryRunResult) Error() string { return "dry run" }

// mutateFunc computes the new served object from the current one (a
// private copy it may change). It may be called more than once.
type mutateFunc func(current runtime.Object) (runtime.Object, error)

// update serves PUT of an object, its status or a namespace's finalize.
func (s *Server) update(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served, sub string) error {
	wr, obj, err := readServed(w, r, sv)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(obj)
	if m.GetName() != "" && m.GetName() != info.name {
		return nameMismatch(m.GetName(), info.name)
	}
	if sv.res.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != info.namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	owner, err := newOwner(r, "UpdateOptions", sub)
	if err != nil {
		return err
	}
	out, err := s.updateObject(r.Context(), sv, info, owner, wr.dry, func(runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	})
	if err != nil {
		return err
	}
	return s.respond(w, r, http.StatusOK, wr.format, sv, out)
}

// updateObject runs the update pipeline in a compare-and-swap loop:
// mutate, carry over system metadata, managedFields, strategy, admission,
// validation, storage. owner.sub is "", "status", "scale", "finalize" or
// one of the resource's status-like Subresources; a scale write runs the
// main resource's strategy.
func (s *Server) updateObject(ctx context.Context, sv *served, info requestInfo, owner fieldOwner, dry bool, mutate mutateFunc) (runtime.Object, error) {
	sub := owner.sub
	if sub == "scale" {
		sub = ""
	}
	key := sv.key(info.namespace, info.name)
	out := sv.stored.New()
	err := sv.store.GuaranteedUpdate(ctx, key, out, false, nil, func(current runtime.Object) (runtime.Object, error) {
		cur, err := sv.fromStored(current)
		if err != nil {
			return nil, err
		}
		// current is the storage's private copy, and so is cur.
		obj, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		if obj, err = s.prepareUpdate(ctx, sv, info, sub, owner, obj, cur, dry); err != nil {
			return nil, err
		}
		stored, err := sv.toStored(obj)
		if err != nil {
			return nil, err
		}
		if dry {
			return nil, dryRunResult{obj: obj}
		}
		if cur != current && apiequality.Semantic.DeepEqual(stored, cur) {
			// What changed is only what reading added (a custom
			// resource's defaults on read): nothing to write.
			return current, nil
		}
		return stored, nil
	})
	var dr dryRunResult
	if errors.As(err, &dr) {
		return dr.obj, nil
	}
	if err != nil {
		return nil, storageError(err, sv.groupResource(), info.name)
	}
	if err := s.finishDeletion(ctx, sv, info, out); err != nil {
		return nil, err
	}
	return sv.fromStored(out)
}

// prepareUpdate checks and completes obj, the replacement for old, and
// returns it.
func (s *Server) prepareUpdate(ctx context.Context, sv *served, info requestInfo, sub string, owner fieldOwner, obj, old runtime.Object, dry bool) (runtime.Object, error) {
	nm, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	om, _ := meta.Accessor(old)
	gr := sv.groupResource()
	if rv := nm.GetResourceVersion(); rv != "" && rv != om.GetResourceVersion() {
		return nil, apierrors.NewConflict(gr, info.name, errors.New(conflictMessage))
	}
	if uid := nm.GetUID(); uid != "" && uid != om.GetUID() {
		return nil, apierrors.NewConflict(gr, info.name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, om.GetUID()))
	}
	if nm.GetName() == "" {
		nm.SetName(info.name)
	}
	if sv.res.Namespaced {
		nm.SetNamespace(info.namespace)
	}
	nm.SetUID(om.GetUID())
	nm.SetCreationTimestamp(om.GetCreationTimestamp())
	nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
	nm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	nm.SetResourceVersion(om.GetResourceVersion())
	nm.SetGeneration(om.GetGeneration())
	nm.SetSelfLink("")

	st := sv.res.Strategy
	var errs field.ErrorList
	// Defaults first, as upstream defaults while decoding: a write that
	// leaves out defaulted fields does not change the spec.
	if st.Default != nil && sub != "finalize" {
		st.Default(obj)
	}
	// Then managedFields, before the strategy and admission change the
	// object, as upstream records them.
	obj = s.trackFields(sv, owner, old, obj)
	if nm, err = meta.Accessor(obj); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	switch sub {
	case "":
		if st.PrepareForUpdate != nil {
			st.PrepareForUpdate(ctx, obj, old)
		} else {
			registry.DefaultPrepareForUpdate(ctx, obj, old)
		}
	case "status":
		if st.PrepareForStatusUpdate != nil {
			st.PrepareForStatusUpdate(ctx, obj, old)
		} else {
			registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
		}
	case "finalize":
		ns, ok1 := obj.(*corev1.Namespace)
		oldNs, ok2 := old.(*corev1.Namespace)
		if !ok1 || !ok2 {
			return nil, apierrors.NewBadRequest("finalize applies to namespaces only")
		}
		finalizers := ns.Spec.Finalizers
		*ns = *oldNs.DeepCopy()
		ns.Spec.Finalizers = finalizers
	default:
		x := sv.res.Subresource(sub)
		if x == nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("%s has no subresource %q", sv.res.GroupVersionResource(), sub))
		}
		x.PrepareForUpdate(ctx, obj, old)
	}
	req := &AdmissionRequest{Operation: Update, Resource: sv.res, Sub: sub, Namespace: info.namespace, Name: info.name, Obj: obj, Old: old, DryRun: dry,
		scale: owner.sub == "scale"}
	if err := s.admit(ctx, req); err != nil {
		return nil, err
	}
	errs = append(errs, validateMeta(sv, nm)...)
	errs = append(errs, apimachineryvalidation.ValidateObjectMetaAccessorUpdate(nm, om, field.NewPath("metadata"))...)
	switch sub {
	case "":
		if st.ValidateUpdate != nil {
			errs = append(errs, st.ValidateUpdate(obj, old)...)
		}
	case "status":
		if st.ValidateStatusUpdate != nil {
			errs = append(errs, st.ValidateStatusUpdate(obj, old)...)
		}
	default:
		if x := sv.res.Subresource(sub); x != nil && x.ValidateUpdate != nil {
			errs = append(errs, x.ValidateUpdate(obj, old)...)
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(sv.res.GroupVersionKind().GroupKind(), info.name, errs)
	}
	if err := s.validate(ctx, req); err != nil {
		return nil, err
	}
	return obj, nil
}
