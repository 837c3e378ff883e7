package core

import "github.com/skiff-io/skiff/internal/registry"

// Resources returns the descriptors of every core/v1 resource skiff
// serves. Names, short names and categories are upstream's discovery
// entries.
func Resources() []*registry.Resource {
	return []*registry.Resource{
		Pods(),
		Nodes(),
		Namespaces(),
		Services(),
		Endpoints(),
		ConfigMaps(),
		Secrets(),
		ServiceAccounts(),
		Events(),
		LimitRanges(),
		ResourceQuotas(),
		PersistentVolumes(),
		PersistentVolumeClaims(),
		PodTemplates(),
		ReplicationControllers(),
	}
}
