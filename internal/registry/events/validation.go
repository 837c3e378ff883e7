package events

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Upstream's length limits.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// Field paths below use this version's names (note, regarding,
// deprecatedSource, ...); upstream reports core/v1's names (message,
// involvedObject, source) even for events.k8s.io writes.

// validateCreate is upstream's strict validation of a new event written
// through events.k8s.io: a new-style event with eventTime, reporting
// controller and instance, action and reason, and none of the deprecated
// fields.
func validateCreate(obj runtime.Object) field.ErrorList {
	e, ok := obj.(*eventsv1.Event)
	if !ok {
		return nil
	}
	errs := validateCommon(e)
	errs = append(errs, validateSeries(e.Series)...)
	if e.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), e.Type, fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if !e.DeprecatedFirstTimestamp.IsZero() {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedFirstTimestamp"), "", "needs to be unset"))
	}
	if !e.DeprecatedLastTimestamp.IsZero() {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedLastTimestamp"), "", "needs to be unset"))
	}
	if e.DeprecatedCount != 0 {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedCount"), "", "needs to be unset"))
	}
	if e.DeprecatedSource.Component != "" || e.DeprecatedSource.Host != "" {
		errs = append(errs, field.Invalid(field.NewPath("deprecatedSource"), "", "needs to be unset"))
	}
	return errs
}

// validateUpdate: only series (and metadata) may change; eventTime is
// compared at microsecond precision, since that is all a client can send.
func validateUpdate(obj, old runtime.Object) field.ErrorList {
	e, ok := obj.(*eventsv1.Event)
	oe, ok2 := old.(*eventsv1.Event)
	if !ok || !ok2 {
		return nil
	}
	errs := validateCommon(e)
	if !apiequality.Semantic.DeepEqual(e.Series, oe.Series) {
		errs = append(errs, validateSeries(e.Series)...)
	}
	immutable := func(name string, a, b interface{}) {
		if !apiequality.Semantic.DeepEqual(a, b) {
			errs = append(errs, field.Invalid(field.NewPath(name), a, "field is immutable"))
		}
	}
	immutable("regarding", e.Regarding, oe.Regarding)
	immutable("reason", e.Reason, oe.Reason)
	immutable("note", e.Note, oe.Note)
	immutable("deprecatedSource", e.DeprecatedSource, oe.DeprecatedSource)
	immutable("deprecatedFirstTimestamp", e.DeprecatedFirstTimestamp, oe.DeprecatedFirstTimestamp)
	immutable("deprecatedLastTimestamp", e.DeprecatedLastTimestamp, oe.DeprecatedLastTimestamp)
	immutable("deprecatedCount", e.DeprecatedCount, oe.DeprecatedCount)
	immutable("type", e.Type, oe.Type)
	if !e.EventTime.Truncate(time.Microsecond).Equal(oe.EventTime.Truncate(time.Microsecond)) {
		errs = append(errs, field.Invalid(field.NewPath("eventTime"), e.EventTime, "field is immutable"))
	}
	return errs
}

// validateCommon is what every event must satisfy (upstream's "legacy"
// validation, which also applies to core/v1 writes).
func validateCommon(e *eventsv1.Event) field.ErrorList {
	var errs field.ErrorList
	rp := field.NewPath("regarding", "namespace")
	if e.EventTime.IsZero() {
		// An old-style event: its namespace and its object's must agree.
		if e.Regarding.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(rp, e.Regarding.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.Regarding.Namespace {
			errs = append(errs, field.Invalid(rp, e.Regarding.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	if e.Regarding.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(rp, e.Regarding.Namespace, "does not match event.namespace"))
	}
	cp := field.NewPath("reportingController")
	if e.ReportingController == "" {
		errs = append(errs, field.Required(cp, ""))
	}
	// Upstream also reports an empty name as an invalid qualified name;
	// once is enough.
	for _, msg := range qualifiedNameErrs(e.ReportingController) {
		errs = append(errs, field.Invalid(cp, e.ReportingController, msg))
	}
	errs = append(errs, requiredWithLimit("reportingInstance", e.ReportingInstance, reportingInstanceLengthLimit)...)
	errs = append(errs, requiredWithLimit("action", e.Action, actionLengthLimit)...)
	errs = append(errs, requiredWithLimit("reason", e.Reason, reasonLengthLimit)...)
	if len(e.Note) > noteLengthLimit {
		errs = append(errs, field.Invalid(field.NewPath("note"), "", fmt.Sprintf("can have at most %v characters", noteLengthLimit)))
	}
	return errs
}

func requiredWithLimit(name, v string, limit int) field.ErrorList {
	p := field.NewPath(name)
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if len(v) > limit {
		return field.ErrorList{field.Invalid(p, "", fmt.Sprintf("can have at most %v characters", limit))}
	}
	return nil
}

func validateSeries(s *eventsv1.EventSeries) field.ErrorList {
	if s == nil {
		return nil
	}
	var errs field.ErrorList
	if s.Count < 2 {
		errs = append(errs, field.Invalid(field.NewPath("series", "count"), s.Count, "should be at least 2"))
	}
	if s.LastObservedTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
	}
	return errs
}

func qualifiedNameErrs(v string) []string {
	if v == "" {
		return nil
	}
	return content.IsLabelKey(v)
}
