package admission

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry/core"
)

// PodDefaults applies to new pods what upstream's default admission chain
// adds (default tolerations, service account, priority): see core.AdmitPod.
type PodDefaults struct{}

func (PodDefaults) Admit(_ context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Create || req.Resource.GroupVersion.Group != "" || req.Resource.Name != "pods" {
		return nil
	}
	if pod, ok := req.Obj.(*corev1.Pod); ok {
		core.AdmitPod(pod)
	}
	return nil
}
