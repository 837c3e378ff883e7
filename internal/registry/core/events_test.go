package core

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestEventTable(t *testing.T) {
	now := time.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
		Reason:         "Pulled",
		Message:        "  pulled image \n",
		Type:           corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(now.Add(-10 * time.Minute)),
		LastTimestamp:  metav1.NewTime(now.Add(-3 * time.Minute)),
		Count:          4,
	}
	tab := Events().Table
	want := []interface{}{"3m", "Normal", "Pulled", "pod/web", "spec.containers{app}", "kubelet, node-1", "pulled image", "10m", int64(4), "web.1"}
	if diff := cmp.Diff(want, tab.Row(ev)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	var names []string
	for _, c := range tab.Columns {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Last Seen", "Type", "Reason", "Object", "Message"}, names); diff != "" {
		t.Errorf("default columns (-want +got):\n%s", diff)
	}

	// A new-style singleton: times from eventTime, count 1, source from the
	// reporting fields.
	ev2 := &corev1.Event{
		InvolvedObject:      corev1.ObjectReference{Kind: "Node"},
		EventTime:           metav1.NewMicroTime(now.Add(-2 * time.Hour)),
		ReportingController: "skiff-scheduler",
		ReportingInstance:   "cp-1",
	}
	got := tab.Row(ev2)
	if got[0] != "120m" || got[3] != "node" || got[5] != "skiff-scheduler, cp-1" || got[7] != "120m" || got[8] != int64(1) {
		t.Errorf("new-style row = %v", got)
	}
}

func TestEventFields(t *testing.T) {
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "e", Namespace: "ns"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "p", UID: "u1", APIVersion: "v1", ResourceVersion: "7", FieldPath: "spec"},
		Reason:              "Started",
		Type:                "Normal",
		ReportingController: "kubelet",
	}
	want := fields.Set{
		"metadata.name": "e", "metadata.namespace": "ns",
		"involvedObject.kind": "Pod", "involvedObject.namespace": "ns", "involvedObject.name": "p",
		"involvedObject.uid": "u1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "7",
		"involvedObject.fieldPath": "spec", "reason": "Started", "reportingComponent": "kubelet",
		"source": "kubelet", "type": "Normal",
	}
	if diff := cmp.Diff(want, Events().Fields(ev)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestEventValidate(t *testing.T) {
	long := strings.Repeat("x", 129)
	for _, tc := range []struct {
		name string
		ev   corev1.Event
		want []string
	}{
		{"old style", corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, InvolvedObject: corev1.ObjectReference{Namespace: "ns"}}, nil},
		{"namespace mismatch", corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, InvolvedObject: corev1.ObjectReference{Namespace: "other"}}, []string{"involvedObject.namespace"}},
		{"cluster object in default", corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default"}}, nil},
		{"new style requires reporting fields", corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default"},
			EventTime:  metav1.NewMicroTime(time.Now()),
		}, []string{"reportingComponent", "reportingInstance", "action", "reason"}},
		{"new style lengths", corev1.Event{
			ObjectMeta:          metav1.ObjectMeta{Namespace: "default"},
			EventTime:           metav1.NewMicroTime(time.Now()),
			ReportingController: "example.com/ctl",
			ReportingInstance:   "i",
			Action:              "Act",
			Reason:              long,
			Message:             strings.Repeat("m", 1025),
		}, []string{"reason", "message"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validateEvent(&tc.ev), tc.want...)
		})
	}
}
