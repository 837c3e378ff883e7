package admission

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// RuntimeClass applies a new pod's node.k8s.io RuntimeClass, as upstream's
// RuntimeClass admission plugin does: a pod naming a class that does not
// exist is refused; the class's overhead.podFixed becomes the pod's
// spec.overhead (a pod that sets a different one is refused); its
// scheduling.nodeSelector is merged into the pod's (a conflicting value is
// refused) and its tolerations added to the pod's. Admit is the mutating
// half; Validation returns the validating half, which checks the overhead
// again once the mutating webhooks have run, and refuses an overhead on a
// pod whose class defines none.
type RuntimeClass struct {
	// Classes is the runtimeclasses store and Key its key function.
	Classes storage.Interface
	Key     func(name string) string
}

// Admit is the mutating half.
func (r *RuntimeClass) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	pod, class, err := r.classOf(ctx, req)
	if err != nil || class == nil {
		return err
	}
	if class.Overhead != nil {
		if len(pod.Spec.Overhead) > 0 && !apiequality.Semantic.DeepEqual(class.Overhead.PodFixed, pod.Spec.Overhead) {
			return forbiddenPod(pod, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
		}
		pod.Spec.Overhead = class.Overhead.PodFixed.DeepCopy()
	}
	if s := class.Scheduling; s != nil {
		if pod.Spec.NodeSelector == nil && len(s.NodeSelector) > 0 {
			pod.Spec.NodeSelector = map[string]string{}
		}
		for k, v := range s.NodeSelector {
			if have, ok := pod.Spec.NodeSelector[k]; ok && have != v {
				return forbiddenPod(pod, fmt.Sprintf("conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s", k, v, k, have))
			}
			pod.Spec.NodeSelector[k] = v
		}
		pod.Spec.Tolerations = mergeTolerations(pod.Spec.Tolerations, s.Tolerations)
	}
	return nil
}

// Validation returns the validating half: a pod's overhead must be
// exactly its class's, and absent when the class defines none (or the pod
// names no class).
func (r *RuntimeClass) Validation() apiserver.Admission {
	return apiserver.AdmissionFunc(func(ctx context.Context, req *apiserver.AdmissionRequest) error {
		pod, class, err := r.classOf(ctx, req)
		if err != nil || pod == nil {
			return err
		}
		if class != nil && class.Overhead != nil {
			if !apiequality.Semantic.DeepEqual(class.Overhead.PodFixed, pod.Spec.Overhead) {
				return forbiddenPod(pod, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
			}
			return nil
		}
		if pod.Spec.Overhead != nil {
			return forbiddenPod(pod, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
		}
		return nil
	})
}

// classOf returns the pod a pod create carries and its RuntimeClass: nil,
// nil for any other request; pod, nil for a pod that names no class; a
// 403 when the class does not exist.
func (r *RuntimeClass) classOf(ctx context.Context, req *apiserver.AdmissionRequest) (*corev1.Pod, *nodev1.RuntimeClass, error) {
	if req.Operation != apiserver.Create || req.Resource.GroupVersion.Group != "" || req.Resource.Name != "pods" || req.Sub != "" {
		return nil, nil, nil
	}
	pod, ok := req.Obj.(*corev1.Pod)
	if !ok || r.Classes == nil {
		return nil, nil, nil
	}
	if pod.Spec.RuntimeClassName == nil {
		return pod, nil, nil
	}
	name := *pod.Spec.RuntimeClassName
	class := &nodev1.RuntimeClass{}
	// The watch cache first, as upstream reads its informer; a class
	// made a moment ago and not in it yet is read from etcd.
	err := r.Classes.Get(ctx, r.Key(name), "0", class)
	if errors.Is(err, storage.ErrNotFound) {
		err = r.Classes.Get(ctx, r.Key(name), "", class)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, forbiddenPod(pod, fmt.Sprintf("pod rejected: RuntimeClass %q not found", name))
	}
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("runtime class %q: %w", name, err))
	}
	return pod, class, nil
}

func forbiddenPod(pod *corev1.Pod, msg string) error {
	return apierrors.NewForbidden(podsGR, pod.Name, errors.New(msg))
}

// mergeTolerations returns first and then second, without the tolerations
// that another one in the result already covers, as upstream merges a
// RuntimeClass's tolerations into a pod's: of two where one tolerates
// everything the other does, only the wider is kept.
func mergeTolerations(first, second []corev1.Toleration) []corev1.Toleration {
	all := append(append([]corev1.Toleration{}, first...), second...)
	var out []corev1.Toleration
next:
	for i, t := range all {
		for _, kept := range out {
			if coversToleration(kept, t) {
				continue next
			}
		}
		for _, later := range all[i+1:] {
			if !apiequality.Semantic.DeepEqual(t, later) && coversToleration(later, t) {
				continue next
			}
		}
		out = append(out, t)
	}
	return out
}

// coversToleration reports whether wide tolerates every taint t tolerates,
// for at least as long.
func coversToleration(wide, t corev1.Toleration) bool {
	if apiequality.Semantic.DeepEqual(wide, t) {
		return true
	}
	if t.Key != wide.Key && (wide.Key != "" || wide.Operator != corev1.TolerationOpExists) {
		return false
	}
	if wide.Effect != "" && t.Effect != wide.Effect {
		return false
	}
	if wide.Effect == corev1.TaintEffectNoExecute && wide.TolerationSeconds != nil {
		if t.TolerationSeconds == nil || *t.TolerationSeconds > *wide.TolerationSeconds {
			return false
		}
	}
	switch wide.Operator {
	case corev1.TolerationOpEqual, "":
		return t.Operator == corev1.TolerationOpEqual && t.Value == wide.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}
