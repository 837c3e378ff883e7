package server

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/admissionregistration"
	"github.com/skiff-io/skiff/internal/registry/apiextensions"
	"github.com/skiff-io/skiff/internal/registry/apiregistration"
	"github.com/skiff-io/skiff/internal/registry/apps"
	"github.com/skiff-io/skiff/internal/registry/autoscaling"
	"github.com/skiff-io/skiff/internal/registry/batch"
	"github.com/skiff-io/skiff/internal/registry/certificates"
	"github.com/skiff-io/skiff/internal/registry/coordination"
	"github.com/skiff-io/skiff/internal/registry/core"
	"github.com/skiff-io/skiff/internal/registry/discovery"
	"github.com/skiff-io/skiff/internal/registry/events"
	"github.com/skiff-io/skiff/internal/registry/flowcontrol"
	"github.com/skiff-io/skiff/internal/registry/networking"
	"github.com/skiff-io/skiff/internal/registry/node"
	"github.com/skiff-io/skiff/internal/registry/policy"
	"github.com/skiff-io/skiff/internal/registry/rbac"
	"github.com/skiff-io/skiff/internal/registry/resource"
	"github.com/skiff-io/skiff/internal/registry/scheduling"
	storagegroup "github.com/skiff-io/skiff/internal/registry/storage"
	"github.com/skiff-io/skiff/internal/registry/storagemigration"
)

// Resources are every resource skiff serves.
func Resources() []*registry.Resource {
	var out []*registry.Resource
	for _, group := range [][]*registry.Resource{
		core.Resources(), apps.Resources(), batch.Resources(), autoscaling.Resources(),
		coordination.Resources(), discovery.Resources(), events.Resources(), policy.Resources(),
		scheduling.Resources(), rbac.Resources(), flowcontrol.Resources(), certificates.Resources(),
		apiextensions.Resources(), admissionregistration.Resources(), apiregistration.Resources(),
		storagegroup.Resources(), networking.Resources(), node.Resources(),
		resource.Resources(), storagemigration.Resources(),
	} {
		for _, r := range group {
			if r != nil {
				out = append(out, r)
			}
		}
	}
	return out
}

func corev1GVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Version: "v1", Resource: resource}
}
