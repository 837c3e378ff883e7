package core

import (
	"time"

	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Length limits of upstream's event validation.
const (
	eventReasonMaxLength            = 128
	eventActionMaxLength            = 128
	eventReportingInstanceMaxLength = 128
	eventMessageMaxLength           = 1024
)

// Events returns the descriptor of core/v1 events ("ev"). Their TTL is the
// storage layer's (the server applies one hour), not the strategy's.
func Events() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "events",
		Singular:     "event",
		Kind:         "Event",
		ShortNames:   []string{"ev"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.Event{} },
		NewList:      func() runtime.Object { return &corev1.EventList{} },
		TTL:          int64(time.Hour / time.Second),
		Strategy: registry.Strategy{
			Validate:       validateEvent,
			ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList { return validateEvent(obj) },
		},
		Table: &registry.Table{
			// Upstream's order: the wide-only columns sit among the
			// default ones.
			Columns: []metav1.TableColumnDefinition{
				{Name: "Last Seen", Type: "string", Description: corev1.Event{}.SwaggerDoc()["lastTimestamp"]},
				{Name: "Type", Type: "string", Description: corev1.Event{}.SwaggerDoc()["type"]},
				{Name: "Reason", Type: "string", Description: corev1.Event{}.SwaggerDoc()["reason"]},
				{Name: "Object", Type: "string", Description: corev1.Event{}.SwaggerDoc()["involvedObject"]},
				{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]},
				{Name: "Source", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["source"]},
				{Name: "Message", Type: "string", Description: corev1.Event{}.SwaggerDoc()["message"]},
				{Name: "First Seen", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["firstTimestamp"]},
				{Name: "Count", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["count"]},
				{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			},
			Row: eventRow,
		},
		Fields: eventFields,
	}
}

// eventFields are upstream's event field selectors.
func eventFields(obj runtime.Object) fields.Set {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return fields.Set{}
	}
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	s := metaFields(&ev.ObjectMeta, true)
	s["involvedObject.kind"] = ev.InvolvedObject.Kind
	s["involvedObject.namespace"] = ev.InvolvedObject.Namespace
	s["involvedObject.name"] = ev.InvolvedObject.Name
	s["involvedObject.uid"] = string(ev.InvolvedObject.UID)
	s["involvedObject.apiVersion"] = ev.InvolvedObject.APIVersion
	s["involvedObject.resourceVersion"] = ev.InvolvedObject.ResourceVersion
	s["involvedObject.fieldPath"] = ev.InvolvedObject.FieldPath
	s["reason"] = ev.Reason
	s["reportingComponent"] = ev.ReportingController
	s["source"] = source
	s["type"] = ev.Type
	return s
}

// eventRow renders an event as upstream's printer does: times fall back to
// eventTime and the series, the count to 1 for new-style singletons.
func eventRow(obj runtime.Object) []interface{} {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return []interface{}{"", "", "", "", "", "", "", "", int64(0), ""}
	}
	first := registry.Since(ev.FirstTimestamp)
	if ev.FirstTimestamp.IsZero() {
		first = metaSince(ev.EventTime)
	}
	last := registry.Since(ev.LastTimestamp)
	if ev.LastTimestamp.IsZero() {
		last = first
	}
	count := ev.Count
	if ev.Series != nil {
		last = metaSince(ev.Series.LastObservedTime)
		count = ev.Series.Count
	} else if count == 0 {
		count = 1
	}
	target := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		target += "/" + ev.InvolvedObject.Name
	}
	component := ev.Source.Component
	if component == "" {
		component = ev.ReportingController
	}
	instance := ev.Source.Host
	if instance == "" {
		instance = ev.ReportingInstance
	}
	source := component
	if instance != "" {
		source += ", " + instance
	}
	return []interface{}{
		last,
		ev.Type,
		ev.Reason,
		target,
		ev.InvolvedObject.FieldPath,
		source,
		strings.TrimSpace(ev.Message),
		first,
		int64(count),
		ev.Name,
	}
}

// validateEvent is upstream's validation of core/v1 events, which is
// lenient for compatibility: old-style events (no eventTime) need only a
// namespace that matches the involved object's; new-style ones also need
// the reporting fields, a reason and bounded lengths.
func validateEvent(obj runtime.Object) field.ErrorList {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return metaWrongType(obj, "v1.Event")
	}
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		if ev.InvolvedObject.Namespace == "" {
			if ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if ev.Namespace != ev.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		rcPath := field.NewPath("reportingComponent")
		if ev.ReportingController == "" {
			errs = append(errs, field.Required(rcPath, ""))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(ev.ReportingController, rcPath)...)
		}
		errs = append(errs, eventRequiredBounded(ev.ReportingInstance, "reportingInstance", eventReportingInstanceMaxLength)...)
		errs = append(errs, eventRequiredBounded(ev.Action, "action", eventActionMaxLength)...)
		errs = append(errs, eventRequiredBounded(ev.Reason, "reason", eventReasonMaxLength)...)
		if len(ev.Message) > eventMessageMaxLength {
			errs = append(errs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %d characters", eventMessageMaxLength)))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(ev.Namespace) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), ev.Namespace, msg))
	}
	return errs
}

// eventRequiredBounded requires a non-empty value of at most max bytes.
func eventRequiredBounded(v, name string, max int) field.ErrorList {
	p := field.NewPath(name)
	switch {
	case v == "":
		return field.ErrorList{field.Required(p, "")}
	case len(v) > max:
		return field.ErrorList{field.Invalid(p, "", fmt.Sprintf("can have at most %d characters", max))}
	}
	return nil
}
