// Package events holds the registry of the events.k8s.io API group. Its
// events are core/v1 events seen through the newer schema: they share the
// core events' storage and watch cache, and are converted at the edge
// (convert.go). Validation is the stricter one upstream applies to writes
// through events.k8s.io.
package events

import (
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of events.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: eventsv1.SchemeGroupVersion,
		Name:         "events",
		Singular:     "event",
		Kind:         "Event",
		ShortNames:   []string{"ev"},
		Namespaced:   true,
		New:          func() runtime.Object { return &eventsv1.Event{} },
		NewList:      func() runtime.Object { return &eventsv1.EventList{} },
		Strategy: registry.Strategy{
			Validate:       validateCreate,
			ValidateUpdate: validateUpdate,
		},
		Table:      eventTable,
		Fields:     eventFields,
		StoredAs:   &schema.GroupVersionResource{Version: "v1", Resource: "events"},
		ToStored:   ToStored,
		FromStored: FromStored,
	}}
}

// eventFields is the field-selector set of an events.k8s.io event, with
// this version's names for what core/v1 calls involvedObject.* and
// reportingComponent.
func eventFields(obj runtime.Object) fields.Set {
	e, ok := obj.(*eventsv1.Event)
	if !ok {
		return fields.Set{}
	}
	return fields.Set{
		"metadata.name":             e.Name,
		"metadata.namespace":        e.Namespace,
		"reason":                    e.Reason,
		"type":                      e.Type,
		"reportingController":       e.ReportingController,
		"regarding.kind":            e.Regarding.Kind,
		"regarding.namespace":       e.Regarding.Namespace,
		"regarding.name":            e.Regarding.Name,
		"regarding.uid":             string(e.Regarding.UID),
		"regarding.apiVersion":      e.Regarding.APIVersion,
		"regarding.resourceVersion": e.Regarding.ResourceVersion,
		"regarding.fieldPath":       e.Regarding.FieldPath,
	}
}
