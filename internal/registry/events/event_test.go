package events

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

var now = time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)

func newEvent() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.1", Namespace: "ns", ResourceVersion: "7", Labels: map[string]string{"a": "b"}},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: "skiff.io/scheduler",
		ReportingInstance:   "scheduler-node-1",
		Action:              "Binding",
		Reason:              "Scheduled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web", UID: "u1", APIVersion: "v1", FieldPath: "spec"},
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		Note:                "Successfully assigned ns/web to node-1",
		Type:                corev1.EventTypeNormal,
	}
}

func TestRoundTrip(t *testing.T) {
	full := newEvent()
	full.Series = &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(now.Add(time.Minute))}
	full.DeprecatedSource = corev1.EventSource{Component: "kubelet", Host: "node-1"}
	full.DeprecatedFirstTimestamp = metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))
	full.DeprecatedLastTimestamp = metav1.NewTime(now.Truncate(time.Second))
	full.DeprecatedCount = 4
	for _, tt := range []struct {
		name string
		in   *eventsv1.Event
	}{{"new style", newEvent()}, {"every field", full}, {"empty", &eventsv1.Event{}}} {
		t.Run(tt.name, func(t *testing.T) {
			stored, err := ToStored(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			back, err := FromStored(stored)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in.DeepCopy()
			want.TypeMeta = metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"}
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToStoredMapping(t *testing.T) {
	in := newEvent()
	in.DeprecatedSource = corev1.EventSource{Component: "kubelet"}
	in.DeprecatedCount = 2
	in.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(now)}
	got, err := ToStored(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Event{
		TypeMeta:            metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Related:             in.Related,
		Reason:              "Scheduled",
		Message:             in.Note,
		Source:              corev1.EventSource{Component: "kubelet"},
		Count:               2,
		Type:                "Normal",
		EventTime:           in.EventTime,
		Series:              &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(now)},
		Action:              "Binding",
		ReportingController: "skiff.io/scheduler",
		ReportingInstance:   "scheduler-node-1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	// The copy must not share the caller's pointers.
	got.(*corev1.Event).Related.Name = "changed"
	if in.Related.Name != "node-1" {
		t.Errorf("ToStored aliased related")
	}
	if _, err := ToStored(&corev1.Event{}); err == nil {
		t.Errorf("ToStored accepted a core event")
	}
	if _, err := FromStored(&eventsv1.Event{}); err == nil {
		t.Errorf("FromStored accepted an events.k8s.io event")
	}
}

func TestValidateCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*eventsv1.Event)
		want   []string
	}{
		{"valid", func(*eventsv1.Event) {}, nil},
		{"no eventTime", func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} }, []string{"FieldValueRequired eventTime"}},
		{"no reporting", func(e *eventsv1.Event) { e.ReportingController, e.ReportingInstance = "", "" },
			[]string{"FieldValueRequired reportingController", "FieldValueRequired reportingInstance"}},
		{"bad controller", func(e *eventsv1.Event) { e.ReportingController = "not a name" }, []string{"FieldValueInvalid reportingController"}},
		{"no action or reason", func(e *eventsv1.Event) { e.Action, e.Reason = "", "" },
			[]string{"FieldValueRequired action", "FieldValueRequired reason"}},
		{"long reason", func(e *eventsv1.Event) { e.Reason = strings.Repeat("r", 129) }, []string{"FieldValueInvalid reason"}},
		{"note at limit", func(e *eventsv1.Event) { e.Note = strings.Repeat("n", 1024) }, nil},
		{"long note", func(e *eventsv1.Event) { e.Note = strings.Repeat("n", 1025) }, []string{"FieldValueInvalid note"}},
		{"bad type", func(e *eventsv1.Event) { e.Type = "Info" }, []string{"FieldValueInvalid type"}},
		{"namespace mismatch", func(e *eventsv1.Event) { e.Regarding.Namespace = "" }, []string{"FieldValueInvalid regarding.namespace"}},
		{"cluster object in default", func(e *eventsv1.Event) {
			e.Namespace, e.Regarding = "default", corev1.ObjectReference{Kind: "Node", Name: "n"}
		}, nil},
		{"deprecated fields", func(e *eventsv1.Event) {
			e.DeprecatedCount = 1
			e.DeprecatedSource.Host = "h"
			e.DeprecatedFirstTimestamp = metav1.NewTime(now)
			e.DeprecatedLastTimestamp = metav1.NewTime(now)
		}, []string{"FieldValueInvalid deprecatedFirstTimestamp", "FieldValueInvalid deprecatedLastTimestamp",
			"FieldValueInvalid deprecatedCount", "FieldValueInvalid deprecatedSource"}},
		{"bad series", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 1} },
			[]string{"FieldValueInvalid series.count", "FieldValueRequired series.lastObservedTime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvent()
			tt.mutate(e)
			if diff := cmp.Diff(tt.want, errFields(validateCreate(e))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*eventsv1.Event)
		want   []string
	}{
		{"series added", func(e *eventsv1.Event) {
			e.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(now)}
		}, nil},
		{"bad series", func(e *eventsv1.Event) {
			e.Series = &eventsv1.EventSeries{Count: 1, LastObservedTime: metav1.NewMicroTime(now)}
		},
			[]string{"FieldValueInvalid series.count"}},
		{"sub-microsecond eventTime", func(e *eventsv1.Event) { e.EventTime = metav1.NewMicroTime(now.Add(300)) }, nil},
		{"eventTime", func(e *eventsv1.Event) { e.EventTime = metav1.NewMicroTime(now.Add(time.Second)) }, []string{"FieldValueInvalid eventTime"}},
		{"note and regarding", func(e *eventsv1.Event) { e.Note = "other"; e.Regarding.Name = "db" },
			[]string{"FieldValueInvalid regarding", "FieldValueInvalid note"}},
		{"type and reason", func(e *eventsv1.Event) { e.Type = "Warning"; e.Reason = "Failed" },
			[]string{"FieldValueInvalid reason", "FieldValueInvalid type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newEvent()
			e := old.DeepCopy()
			tt.mutate(e)
			if diff := cmp.Diff(tt.want, errFields(validateUpdate(e, old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTable(t *testing.T) {
	r := Resources()[0]
	if r.StoredAs == nil || r.StoredAs.Group != "" || r.StoredAs.Version != "v1" || r.StoredAs.Resource != "events" {
		t.Fatalf("StoredAs = %v", r.StoredAs)
	}
	fresh := newEvent()
	fresh.EventTime = metav1.NewMicroTime(time.Now().Add(-2 * time.Minute))
	series := newEvent()
	series.EventTime = metav1.NewMicroTime(time.Now().Add(-10 * time.Minute))
	series.Series = &eventsv1.EventSeries{Count: 5, LastObservedTime: metav1.NewMicroTime(time.Now().Add(-30 * time.Second))}
	legacy := &eventsv1.Event{
		ObjectMeta:               metav1.ObjectMeta{Name: "n.1"},
		Regarding:                corev1.ObjectReference{Kind: "Node"},
		Type:                     "Warning",
		Reason:                   "Rebooted",
		Note:                     " rebooted \n",
		DeprecatedSource:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		DeprecatedFirstTimestamp: metav1.NewTime(time.Now().Add(-3 * time.Hour)),
		DeprecatedCount:          2,
	}
	tests := []struct {
		name string
		e    *eventsv1.Event
		want []interface{}
	}{
		{"new style", fresh, []interface{}{"2m", "Normal", "Scheduled", "pod/web", "spec", "skiff.io/scheduler, scheduler-node-1",
			"Successfully assigned ns/web to node-1", "2m", int64(1), "web.1"}},
		{"series", series, []interface{}{"30s", "Normal", "Scheduled", "pod/web", "spec", "skiff.io/scheduler, scheduler-node-1",
			"Successfully assigned ns/web to node-1", "10m", int64(5), "web.1"}},
		{"legacy", legacy, []interface{}{"3h", "Warning", "Rebooted", "node", "", "kubelet, node-1", "rebooted", "3h", int64(2), "n.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := r.Table.Row(tt.e)
			if diff := cmp.Diff(tt.want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if len(row) != len(r.Table.Columns) {
				t.Errorf("%d cells, %d columns", len(row), len(r.Table.Columns))
			}
		})
	}
}

func TestFields(t *testing.T) {
	f := Resources()[0].Fields(newEvent())
	for k, v := range map[string]string{"metadata.name": "web.1", "metadata.namespace": "ns", "regarding.kind": "Pod",
		"regarding.name": "web", "regarding.uid": "u1", "reason": "Scheduled", "type": "Normal", "reportingController": "skiff.io/scheduler"} {
		if f[k] != v {
			t.Errorf("field %s = %q, want %q", k, f[k], v)
		}
	}
}
