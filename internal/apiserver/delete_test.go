package apiserver

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A DELETE answers 202 only as upstream's handler does: the object is
// still there and the client set orphanDependents=false.
func TestDeleteStatusCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deleted bool
		opts    metav1.DeleteOptions
		want    int
	}{
		{"deleted", true, metav1.DeleteOptions{}, http.StatusOK},
		{"deleted, orphanDependents=false", true, metav1.DeleteOptions{OrphanDependents: ptr.To(false)}, http.StatusOK},
		{"graceful", false, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](60)}, http.StatusOK},
		{"held, foreground", false, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}, http.StatusOK},
		{"held, orphanDependents=true", false, metav1.DeleteOptions{OrphanDependents: ptr.To(true)}, http.StatusOK},
		{"held, orphanDependents=false", false, metav1.DeleteOptions{OrphanDependents: ptr.To(false)}, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deleteStatusCode(tc.deleted, &tc.opts); got != tc.want {
				t.Errorf("deleteStatusCode = %d, want %d", got, tc.want)
			}
		})
	}
}

// beginDeletion bumps the generation of an object that tracks one the
// first time its deletion begins (a graceful deletion, or finalizers
// holding it), never again, and never for an object without one.
func TestBeginDeletion(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	type state struct {
		Generation int64
		Deletion   *metav1.Time
		Grace      *int64
		Finalizers []string
	}
	for _, tc := range []struct {
		name  string
		in    state
		grace int64
		extra string
		want  state
	}{
		{"graceful, first", state{Generation: 1}, 60, "",
			state{Generation: 2, Deletion: at(time.Minute), Grace: ptr.To[int64](60)}},
		{"held by finalizers, first", state{Generation: 3, Finalizers: []string{"example.com/f"}}, 0, "",
			state{Generation: 4, Deletion: at(0), Grace: ptr.To[int64](0), Finalizers: []string{"example.com/f"}}},
		{"foreground, first", state{Generation: 1}, 0, metav1.FinalizerDeleteDependents,
			state{Generation: 2, Deletion: at(0), Grace: ptr.To[int64](0), Finalizers: []string{metav1.FinalizerDeleteDependents}}},
		{"no generation", state{}, 30, "",
			state{Deletion: at(30 * time.Second), Grace: ptr.To[int64](30)}},
		{"already deleting, shorter grace", state{Generation: 2, Deletion: at(time.Minute), Grace: ptr.To[int64](60)}, 10, "",
			state{Generation: 2, Deletion: at(10 * time.Second), Grace: ptr.To[int64](10)}},
		{"already deleting, longer grace", state{Generation: 2, Deletion: at(time.Minute), Grace: ptr.To[int64](60)}, 90, "",
			state{Generation: 2, Deletion: at(time.Minute), Grace: ptr.To[int64](60)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &metav1.ObjectMeta{Generation: tc.in.Generation, DeletionTimestamp: tc.in.Deletion,
				DeletionGracePeriodSeconds: tc.in.Grace, Finalizers: tc.in.Finalizers}
			beginDeletion(m, now, tc.grace, tc.extra)
			got := state{m.Generation, m.DeletionTimestamp, m.DeletionGracePeriodSeconds, m.Finalizers}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("after beginDeletion (-want +got):\n%s", diff)
			}
		})
	}
}
