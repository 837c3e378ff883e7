package apps

import (
	appsv1 "k8s.io/api/apps/v1"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of every apps/v1 resource skiff serves.
// Names, short names and categories are upstream's discovery entries.
func Resources() []*registry.Resource {
	return []*registry.Resource{
		deploymentResource(),
		replicaSetResource(),
		statefulSetResource(),
		daemonSetResource(),
		controllerRevisionResource(),
	}
}

// groupVersion is the version every resource of this package serves.
var groupVersion = appsv1.SchemeGroupVersion
