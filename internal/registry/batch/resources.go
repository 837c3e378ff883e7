package batch

import (
	batchv1 "k8s.io/api/batch/v1"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of every batch/v1 resource skiff
// serves. Names, short names and categories are upstream's discovery
// entries (jobs have no short name).
func Resources() []*registry.Resource {
	return []*registry.Resource{
		jobResource(),
		cronJobResource(),
	}
}

// groupVersion is the version every resource of this package serves.
var groupVersion = batchv1.SchemeGroupVersion
