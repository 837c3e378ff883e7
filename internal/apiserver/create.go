package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// dryRun reports whether the request asks for dryRun=All, and rejects
// other values as upstream.
func dryRun(r *http.Request) (bool, error) {
	vals := r.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q: supported values: \"All\"", v))
		}
	}
	return len(vals) > 0, nil
}

// create serves POST of a new object.
func (s *Server) create(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	wr, obj, err := readServed(w, r, sv)
	if err != nil {
		return err
	}
	owner, err := newOwner(r, "CreateOptions", "")
	if err != nil {
		return err
	}
	out, err := s.createObject(r.Context(), sv, info.namespace, obj, wr.dry, owner)
	if err != nil {
		return err
	}
	return s.respond(w, r, http.StatusCreated, wr.format, sv, out)
}

// createObject runs the create pipeline on a decoded object: metadata,
// strategy, admission, validation, storage. It returns the served object
// as stored (or as it would be, on a dry run). managedFields the request
// gives are kept when valid (an empty list resets them), as upstream.
func (s *Server) createObject(ctx context.Context, sv *served, namespace string, obj runtime.Object, dry bool, owner fieldOwner) (runtime.Object, error) {
	if sv.res.Terminating {
		err := apierrors.NewMethodNotSupported(sv.groupResource(), "create")
		err.ErrStatus.Message = "create not allowed while custom resource definition is terminating"
		return nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if sv.res.Namespaced {
		if m.GetNamespace() != "" && m.GetNamespace() != namespace {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		m.SetNamespace(namespace)
	} else {
		m.SetNamespace("")
	}
	if m.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	if generated {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
	}
	m.SetUID(types.UID(uuid.NewString()))
	m.SetCreationTimestamp(metav1.Now())
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")

	// Defaults first, as upstream defaults while decoding.
	st := sv.res.Strategy
	if st.Default != nil {
		st.Default(obj)
	}
	// Then managedFields, before the strategy and admission change the
	// object, as upstream records them.
	live := sv.res.New()
	obj = s.trackFields(sv, owner, live, obj)
	if m, err = meta.Accessor(obj); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if st.PrepareForCreate != nil {
		st.PrepareForCreate(ctx, obj)
	} else {
		registry.DefaultPrepareForCreate(ctx, obj)
	}
	req := &AdmissionRequest{Operation: Create, Resource: sv.res, Namespace: namespace, Name: m.GetName(), Obj: obj, DryRun: dry}
	if err := s.admit(ctx, req); err != nil {
		return nil, err
	}
	errs := validateMeta(sv, m)
	if st.Validate != nil {
		errs = append(errs, st.Validate(obj)...)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(sv.res.GroupVersionKind().GroupKind(), m.GetName(), errs)
	}
	if err := s.validate(ctx, req); err != nil {
		return nil, err
	}
	stored, err := sv.toStored(obj)
	if err != nil {
		return nil, err
	}
	if dry {
		return obj, nil
	}
	ttl := sv.stored.TTL
	out := sv.stored.New()
	for attempt := 0; ; attempt++ {
		err = sv.store.Create(ctx, sv.key(namespace, m.GetName()), stored, out, ttl)
		if !(generated && errors.Is(err, storage.ErrAlreadyExists) && attempt < 8) {
			break
		}
		// A generated name collided: draw another, as upstream does.
		m.SetName(m.GetGenerateName() + utilrand.String(5))
		if stored, err = sv.toStored(obj); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, storageError(err, sv.groupResource(), m.GetName())
	}
	return sv.fromStored(out)
}

// validateMeta checks an object's metadata on create: name format, the
// namespace, labels, annotations, owner references and finalizers.
func validateMeta(sv *served, m metav1.Object) field.ErrorList {
	nameFn := sv.res.Strategy.NameValidation
	if nameFn == nil {
		nameFn = registry.NameIsDNSSubdomain
	}
	return apimachineryvalidation.ValidateObjectMetaAccessor(m, sv.res.Namespaced, apimachineryvalidation.ValidateNameFunc(nameFn), field.NewPath("metadata"))
}
