package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// scaleOf renders an object's scale subresource.
func scaleOf(sv *served, obj runtime.Object) *autoscalingv1.Scale {
	return scaleOfResource(sv.res, obj)
}

// scaleOfResource renders the scale subresource of res's object obj; nil
// for none.
func scaleOfResource(res *registry.Resource, obj runtime.Object) *autoscalingv1.Scale {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return nil
	}
	m, _ := meta.Accessor(obj)
	spec, status, sel := res.Scale.Get(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: sel},
	}
}

// serveScale serves get, update and patch of /scale.
func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	switch info.verb {
	case "get":
		format, ok := negotiateOutput(r)
		if !ok {
			return notAcceptable()
		}
		cur := sv.stored.New()
		if err := sv.store.Get(r.Context(), sv.key(info.namespace, info.name), r.URL.Query().Get("resourceVersion"), cur); err != nil {
			return storageError(err, sv.groupResource(), info.name)
		}
		writeObject(w, http.StatusOK, format, scaleOf(sv, cur))
		return nil
	case "update", "patch":
	default:
		return methodNotAllowed(info, r)
	}
	wr, err := readWrite(r)
	if err != nil {
		return err
	}
	// newScale computes the requested Scale from the current one.
	var newScale func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
	if info.verb == "update" {
		obj, _, err := wr.decode(scaleGVK, &autoscalingv1.Scale{})
		if err != nil {
			return err
		}
		newScale = func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			return obj.(*autoscalingv1.Scale).DeepCopy(), nil
		}
	} else {
		apply, err := patcher(wr.contentType, wr.body, &autoscalingv1.Scale{})
		if err != nil {
			return err
		}
		newScale = func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			raw, err := json.Marshal(cur)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			patched, err := apply(raw)
			if err != nil {
				return nil, err
			}
			obj, _, err := decodeWith("application/json", wr.directive, patched, scaleGVK, &autoscalingv1.Scale{}, nil)
			if err != nil {
				return nil, err
			}
			return obj.(*autoscalingv1.Scale), nil
		}
	}
	owner, err := newOwner(r, "UpdateOptions", "scale")
	if info.verb == "patch" {
		owner, err = patchOwner(r, wr.contentType, "scale")
	}
	if err != nil {
		return err
	}
	out, err := s.updateObject(r.Context(), sv, info, owner, wr.dry, func(cur runtime.Object) (runtime.Object, error) {
		sc, err := newScale(scaleOf(sv, cur))
		if err != nil {
			return nil, err
		}
		if sc.Name != "" && sc.Name != info.name {
			return nil, nameMismatch(sc.Name, info.name)
		}
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), info.name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		m, _ := meta.Accessor(cur)
		if sc.ResourceVersion != "" && sc.ResourceVersion != m.GetResourceVersion() {
			return nil, apierrors.NewConflict(sv.groupResource(), info.name, errors.New(conflictMessage))
		}
		// A copy: the update pipeline compares the new object with cur
		// (managedFields, generation).
		obj := cur.DeepCopyObject()
		sv.res.Scale.SetReplicas(obj, sc.Spec.Replicas)
		return obj, nil
	})
	if err != nil {
		return err
	}
	writeObject(w, http.StatusOK, wr.format, scaleOf(sv, out))
	return nil
}

// serveBinding serves POST pods/<name>/binding: it assigns the pod to a
// node, once, and marks it scheduled.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	wr, err := readWrite(r)
	if err != nil {
		return err
	}
	obj, _, err := wr.decode(corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{})
	if err != nil {
		return err
	}
	b := obj.(*corev1.Binding)
	if b.Name != "" && b.Name != info.name {
		return nameMismatch(b.Name, info.name)
	}
	if b.Target.Name == "" {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Binding"}, info.name, field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	if err := s.bindPod(r.Context(), sv, info.namespace, info.name, b, wr.dry); err != nil {
		return err
	}
	writeObject(w, http.StatusCreated, wr.format, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return nil
}

func (s *Server) bindPod(ctx context.Context, sv *served, namespace, name string, b *corev1.Binding, dry bool) error {
	gr := sv.groupResource()
	// The answer is a Status: the bound pod is not decoded again (nil out).
	err := sv.store.GuaranteedUpdate(ctx, sv.key(namespace, name), nil, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(gr, name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(gr, name, fmt.Errorf("pod %s is already assigned to node %q", name, pod.Spec.NodeName))
		}
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		if dry {
			return nil, dryRunResult{obj: pod}
		}
		return pod, nil
	})
	var dr dryRunResult
	if errors.As(err, &dr) {
		return nil
	}
	return storageError(err, gr, name)
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}
