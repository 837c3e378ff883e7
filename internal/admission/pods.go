package admission

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry/core"
)

// PodDefaults applies to new pods what upstream's default admission chain
// adds (default tolerations, service account, priority): see core.AdmitPod.
// On an update of a pod (not of its subresources) it adds the default
// tolerations again, as upstream's DefaultTolerationSeconds does.
type PodDefaults struct{}

func (PodDefaults) Admit(_ context.Context, req *apiserver.AdmissionRequest) error {
	if req.Resource.GroupVersion.Group != "" || req.Resource.Name != "pods" || req.Sub != "" {
		return nil
	}
	pod, ok := req.Obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	switch req.Operation {
	case apiserver.Create:
		core.AdmitPod(pod)
	case apiserver.Update:
		core.AddDefaultTolerations(&pod.Spec)
	}
	return nil
}
