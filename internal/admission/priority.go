package admission

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// Priority resolves a new pod's priorityClassName to spec.priority and
// spec.preemptionPolicy from the PriorityClass objects, as upstream's
// Priority admission plugin does; a pod without a class gets the
// globalDefault class if one exists. The system classes and pods with no
// class and no default are left to core.AdmitPod.
type Priority struct {
	// Classes is the priorityclasses store; Key its key function and
	// Prefix its list prefix.
	Classes storage.Interface
	Key     func(name string) string
	Prefix  string
}

var podsGR = schema.GroupResource{Resource: "pods"}

func (p *Priority) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Create || req.Resource.GroupVersion.Group != "" || req.Resource.Name != "pods" || req.Sub != "" {
		return nil
	}
	pod, ok := req.Obj.(*corev1.Pod)
	if !ok || p.Classes == nil {
		return nil
	}
	name := pod.Spec.PriorityClassName
	var class *schedulingv1.PriorityClass
	switch name {
	case "system-cluster-critical", "system-node-critical":
		return nil
	case "":
		c, err := p.globalDefault(ctx)
		if err != nil {
			return err
		}
		if c == nil {
			return nil
		}
		class = c
		pod.Spec.PriorityClassName = c.Name
	default:
		class = &schedulingv1.PriorityClass{}
		err := p.Classes.Get(ctx, p.Key(name), "0", class)
		if errors.Is(err, storage.ErrNotFound) {
			err = p.Classes.Get(ctx, p.Key(name), "", class)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return apierrors.NewForbidden(podsGR, pod.Name, fmt.Errorf("no PriorityClass with name %s was found", name))
		}
		if err != nil {
			return apierrors.NewInternalError(fmt.Errorf("priority class %q: %w", name, err))
		}
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != class.Value {
		return apierrors.NewForbidden(podsGR, pod.Name, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, class.Value))
	}
	v := class.Value
	pod.Spec.Priority = &v
	if pod.Spec.PreemptionPolicy == nil && class.PreemptionPolicy != nil {
		pp := *class.PreemptionPolicy
		pod.Spec.PreemptionPolicy = &pp
	}
	return nil
}

// globalDefault returns the class marked globalDefault, the lowest-valued
// one if several are (as upstream).
func (p *Priority) globalDefault(ctx context.Context) (*schedulingv1.PriorityClass, error) {
	list := &schedulingv1.PriorityClassList{}
	if err := p.Classes.List(ctx, p.Prefix, storage.ListOptions{ResourceVersion: "0"}, list); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("priority classes: %w", err))
	}
	var out *schedulingv1.PriorityClass
	for i := range list.Items {
		c := &list.Items[i]
		if c.GlobalDefault && (out == nil || c.Value < out.Value) {
			out = c
		}
	}
	return out, nil
}
