package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"

	"sigs.k8s.io/yaml"

	"github.com/skiff-io/skiff/internal/storage"
)

// deleteOptions reads DeleteOptions from the query and the body (the body
// wins), and validates them as upstream.
func deleteOptions(r *http.Request, body []byte) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	if err := scheme.ParameterCodec.DecodeParameters(r.URL.Query(), coreV1, opts); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if len(body) > 0 {
		dec, mt, ok := inputSerializer(r.Header.Get("Content-Type"), false)
		if !ok {
			return nil, unsupportedMediaType(mt)
		}
		// DeleteOptions arrive as meta.k8s.io/v1 or v1; JSON and YAML are
		// read field by field, protobuf through the scheme.
		var err error
		if mt == "application/vnd.kubernetes.protobuf" {
			gvk := coreV1.WithKind("DeleteOptions")
			_, _, err = dec.Decode(body, &gvk, opts)
		} else {
			err = yaml.Unmarshal(body, opts)
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
		}
	}
	var errs field.ErrorList
	if opts.OrphanDependents != nil && opts.PropagationPolicy != nil {
		errs = append(errs, field.Invalid(field.NewPath("propagationPolicy"), *opts.PropagationPolicy, "orphanDependents and deletionPropagation cannot be both set"))
	}
	if p := opts.PropagationPolicy; p != nil && *p != metav1.DeletePropagationForeground &&
		*p != metav1.DeletePropagationBackground && *p != metav1.DeletePropagationOrphan {
		errs = append(errs, field.NotSupported(field.NewPath("propagationPolicy"), *p, []string{"Foreground", "Background", "Orphan", "nil"}))
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			errs = append(errs, field.NotSupported(field.NewPath("dryRun"), v, []string{"All"}))
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("DeleteOptions").GroupKind(), "", errs)
	}
	return opts, nil
}

// delete serves DELETE of one object.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	format, ok := negotiateOutput(r)
	if !ok {
		return notAcceptable()
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	opts, err := deleteOptions(r, body)
	if err != nil {
		return err
	}
	obj, deleted, err := s.deleteObject(r.Context(), sv, info.namespace, info.name, opts)
	if err != nil {
		return err
	}
	code := deleteStatusCode(deleted, opts)
	if deleted && !sv.res.ReturnDeletedObject {
		m, _ := meta.Accessor(obj)
		writeObject(w, code, format, &metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusSuccess,
			Details:  &metav1.StatusDetails{Name: info.name, Group: sv.res.GroupVersion.Group, Kind: sv.res.Name, UID: m.GetUID()},
		})
		return nil
	}
	return s.respond(w, r, code, format, sv, obj)
}

// deleteStatusCode is the HTTP status of a DELETE's answer, as upstream's
// handler chooses it: 202 Accepted only when the object is still there
// and the client asked for cascading deletion with orphanDependents=false;
// 200 otherwise, for a graceful deletion or a finalizer-held object too
// (upstream keeps 200 there so as not to break clients, and its
// conformance suite checks it for a graceful pod deletion).
func deleteStatusCode(deleted bool, opts *metav1.DeleteOptions) int {
	if !deleted && opts.OrphanDependents != nil && !*opts.OrphanDependents {
		return http.StatusAccepted
	}
	return http.StatusOK
}

// propagationFinalizer is the finalizer a delete adds for its propagation
// policy, which the garbage collector acts on.
func propagationFinalizer(opts *metav1.DeleteOptions) string {
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.FinalizerOrphanDependents
	}
	if opts.PropagationPolicy != nil {
		switch *opts.PropagationPolicy {
		case metav1.DeletePropagationOrphan:
			return metav1.FinalizerOrphanDependents
		case metav1.DeletePropagationForeground:
			return metav1.FinalizerDeleteDependents
		}
	}
	return ""
}

// deleteObject deletes one object, or starts its graceful deletion. It
// returns the object (as deleted, or as now stored) and whether it is gone.
func (s *Server) deleteObject(ctx context.Context, sv *served, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	key := sv.key(namespace, name)
	gr := sv.groupResource()
	dry := len(opts.DryRun) > 0
	st := sv.stored.Strategy
	for attempt := 0; attempt < 16; attempt++ {
		cur := sv.stored.New()
		if err := sv.store.Get(ctx, key, "", cur); err != nil {
			return nil, false, storageError(err, gr, name)
		}
		m, err := meta.Accessor(cur)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, false, apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		old, err := sv.fromStored(cur)
		if err != nil {
			return nil, false, err
		}
		req := &AdmissionRequest{Operation: Delete, Resource: sv.res, Namespace: namespace, Name: name, Old: old, DryRun: dry}
		if err := s.admit(ctx, req); err != nil {
			return nil, false, err
		}
		if err := s.validate(ctx, req); err != nil {
			return nil, false, err
		}
		grace := int64(0)
		if st.GracePeriod != nil {
			grace = st.GracePeriod(cur, opts.GracePeriodSeconds)
		}
		extra := propagationFinalizer(opts)
		held := len(m.GetFinalizers()) > 0 || (st.DeletionHeld != nil && st.DeletionHeld(cur))
		pending := grace > 0 || held || extra != ""
		if m.GetDeletionTimestamp() != nil && grace == 0 && !held {
			pending = false // a graceful deletion cut short
		}
		if dry {
			out, err := sv.fromStored(cur)
			return out, !pending, err
		}
		if !pending {
			uid, rv := string(m.GetUID()), m.GetResourceVersion()
			out := sv.stored.New()
			err := sv.store.Delete(ctx, key, out, &storage.Preconditions{UID: &uid, ResourceVersion: &rv}, nil)
			if errors.Is(err, storage.ErrConflict) {
				continue // changed under us: decide again
			}
			if err != nil {
				return nil, false, storageError(err, gr, name)
			}
			obj, err := sv.fromStored(out)
			return obj, true, err
		}
		out, err := s.markDeleting(ctx, sv, key, name, grace, extra)
		if err != nil {
			return nil, false, err
		}
		return out, false, nil
	}
	return nil, false, apierrors.NewConflict(gr, name, errors.New(conflictMessage))
}

// markDeleting records the start of an object's deletion (see
// beginDeletion); namespaces go to phase Terminating. When nothing then
// holds the object back, it is deleted.
func (s *Server) markDeleting(ctx context.Context, sv *served, key, name string, grace int64, extra string) (runtime.Object, error) {
	out := sv.stored.New()
	err := sv.store.GuaranteedUpdate(ctx, key, out, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		m, err := meta.Accessor(cur)
		if err != nil {
			return nil, err
		}
		beginDeletion(m, time.Now(), grace, extra)
		if begin := sv.stored.Strategy.BeginDeletion; begin != nil {
			begin(cur)
		}
		return cur, nil
	})
	if err != nil {
		return nil, storageError(err, sv.groupResource(), name)
	}
	m, _ := meta.Accessor(out)
	if err := s.finishDeletion(ctx, sv, requestInfo{namespace: m.GetNamespace(), name: m.GetName()}, out); err != nil {
		return nil, err
	}
	return sv.fromStored(out)
}

// beginDeletion sets m's deletionTimestamp to now + grace (never later
// than an earlier one) with deletionGracePeriodSeconds, and adds the
// propagation finalizer extra (if any). The first time, it also bumps
// metadata.generation of an object that tracks one (generation > 0), as
// upstream does for a graceful deletion and for an object finalizers hold:
// the deletion is a change of desired state its controllers must observe
// (the kubelet reports it in a pod's status.observedGeneration).
func beginDeletion(m metav1.Object, now time.Time, grace int64, extra string) {
	old := m.GetDeletionTimestamp()
	if old == nil && m.GetGeneration() > 0 {
		m.SetGeneration(m.GetGeneration() + 1)
	}
	when := metav1.NewTime(now.Add(time.Duration(grace) * time.Second).Truncate(time.Second))
	if old == nil || when.Before(old) {
		m.SetDeletionTimestamp(&when)
		g := grace
		m.SetDeletionGracePeriodSeconds(&g)
	}
	if extra != "" && !slices.Contains(m.GetFinalizers(), extra) {
		m.SetFinalizers(append(m.GetFinalizers(), extra))
	}
}

// finishDeletion deletes an object whose deletion was pending and that
// nothing holds back any more: no finalizers and no grace period left
// (upstream's ShouldDeleteDuringUpdate).
func (s *Server) finishDeletion(ctx context.Context, sv *served, info requestInfo, stored runtime.Object) error {
	m, err := meta.Accessor(stored)
	if err != nil || m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return nil
	}
	if held := sv.stored.Strategy.DeletionHeld; held != nil && held(stored) {
		return nil
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return nil
	}
	uid, rv := string(m.GetUID()), m.GetResourceVersion()
	err = sv.store.Delete(ctx, sv.key(info.namespace, info.name), sv.stored.New(), &storage.Preconditions{UID: &uid, ResourceVersion: &rv}, nil)
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
		return storageError(err, sv.groupResource(), info.name)
	}
	return nil
}

// deleteCollection serves DELETE of a collection: every object the
// selectors match is deleted as a single DELETE would. It answers with the
// list of what was deleted or is being deleted.
func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	format, ok := negotiateOutput(r)
	if !ok {
		return notAcceptable()
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	opts, err := deleteOptions(r, body)
	if err != nil {
		return err
	}
	_, lopts, err := s.listOptions(r, info, sv)
	if err != nil {
		return err
	}
	lopts.Limit, lopts.Continue = 0, ""
	listObj, items, err := s.readList(r.Context(), info.namespace, sv, lopts)
	if err != nil {
		return err
	}
	var done []runtime.Object
	for _, it := range items {
		m, err := meta.Accessor(it)
		if err != nil {
			continue
		}
		obj, _, err := s.deleteObject(r.Context(), sv, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		done = append(done, obj)
	}
	if err := meta.SetList(listObj, done); err != nil {
		return apierrors.NewInternalError(err)
	}
	writeObject(w, http.StatusOK, format, listObj)
	return nil
}
