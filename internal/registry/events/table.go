package events

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// eventTable has upstream's event columns, which are the same for core/v1
// and events.k8s.io/v1 (upstream prints both from one internal type, with
// core/v1 descriptions). Unlike every other table, Name is not first: it
// is the last, -o wide only, column.
var eventTable = &registry.Table{
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
}

// eventRow: first seen falls back to eventTime, last seen to first seen
// or the series' last observation; a new-style singleton counts 1.
func eventRow(obj runtime.Object) []interface{} {
	e, ok := obj.(*eventsv1.Event)
	if !ok {
		return nil
	}
	first := registry.Since(e.DeprecatedFirstTimestamp)
	if e.DeprecatedFirstTimestamp.IsZero() {
		first = sinceMicro(e.EventTime)
	}
	last := registry.Since(e.DeprecatedLastTimestamp)
	if e.DeprecatedLastTimestamp.IsZero() {
		last = first
	}
	count := e.DeprecatedCount
	if e.Series != nil {
		last = sinceMicro(e.Series.LastObservedTime)
		count = e.Series.Count
	} else if count == 0 {
		count = 1
	}
	target := strings.ToLower(e.Regarding.Kind)
	if e.Regarding.Name != "" {
		target += "/" + e.Regarding.Name
	}
	return []interface{}{
		last, e.Type, e.Reason, target, e.Regarding.FieldPath,
		eventSource(e), strings.TrimSpace(e.Note), first, int64(count), e.Name,
	}
}

func sinceMicro(t metav1.MicroTime) string {
	return registry.Since(metav1.Time{Time: t.Time})
}

// eventSource prints "component, host", preferring the deprecated source
// and falling back to the reporting controller and instance.
func eventSource(e *eventsv1.Event) string {
	component, host := e.DeprecatedSource.Component, e.DeprecatedSource.Host
	if component == "" {
		component = e.ReportingController
	}
	if host == "" {
		host = e.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}
