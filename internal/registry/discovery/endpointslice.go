// Package discovery holds the registry of the discovery.k8s.io API group:
// endpoint slices, which the endpointslice controller writes for each
// Service (labelled kubernetes.io/service-name) and the proxy and dns read.
package discovery

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of discovery.k8s.io/v1.
//
// Clients find a Service's slices with the label selector
// kubernetes.io/service-name=<name>; as upstream, the only field selectors
// are metadata.name and metadata.namespace (Fields nil).
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: discoveryv1.SchemeGroupVersion,
		Name:         "endpointslices",
		Singular:     "endpointslice",
		Kind:         "EndpointSlice",
		Namespaced:   true,
		New:          func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList:      func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		Strategy: registry.Strategy{
			PrepareForCreate: prepareForCreate,
			PrepareForUpdate: prepareForUpdate,
			Default:          defaultEndpointSlice,
			Validate:         func(obj runtime.Object) field.ErrorList { return validateEndpointSlice(obj, nil) },
			ValidateUpdate:   validateEndpointSlice,
		},
		Table: endpointSliceTable,
	}}
}

// prepareForCreate sets generation 1: a slice has no spec field, so the
// default (which looks for one) would not.
func prepareForCreate(_ context.Context, obj runtime.Object) {
	if eps, ok := obj.(*discoveryv1.EndpointSlice); ok {
		eps.Generation = 1
	}
}

// prepareForUpdate bumps generation when anything but metadata changed,
// or the labels did (they tie the slice to its Service).
func prepareForUpdate(_ context.Context, obj, old runtime.Object) {
	eps, ok := obj.(*discoveryv1.EndpointSlice)
	oeps, ok2 := old.(*discoveryv1.EndpointSlice)
	if !ok || !ok2 {
		return
	}
	eps.Generation = oeps.Generation
	if eps.AddressType != oeps.AddressType ||
		!apiequality.Semantic.DeepEqual(eps.Endpoints, oeps.Endpoints) ||
		!apiequality.Semantic.DeepEqual(eps.Ports, oeps.Ports) ||
		!apiequality.Semantic.DeepEqual(eps.Labels, oeps.Labels) {
		eps.Generation++
	}
}

// defaultEndpointSlice: ports get an empty name and protocol TCP.
func defaultEndpointSlice(obj runtime.Object) {
	eps, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	for i := range eps.Ports {
		p := &eps.Ports[i]
		if p.Name == nil {
			p.Name = new(string)
		}
		if p.Protocol == nil {
			tcp := corev1.ProtocolTCP
			p.Protocol = &tcp
		}
	}
}
