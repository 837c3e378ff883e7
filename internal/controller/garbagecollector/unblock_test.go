package garbagecollector

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestUnblocked(t *testing.T) {
	in := []metav1.OwnerReference{
		{UID: "a", Name: "a", BlockOwnerDeletion: ptr.To(true), Controller: ptr.To(true)},
		{UID: "b", Name: "b"},
		{UID: "c", Name: "c", BlockOwnerDeletion: ptr.To(false)},
	}
	got, changed := unblocked(in)
	want := []metav1.OwnerReference{
		{UID: "a", Name: "a", BlockOwnerDeletion: ptr.To(false), Controller: ptr.To(true)},
		{UID: "b", Name: "b"},
		{UID: "c", Name: "c", BlockOwnerDeletion: ptr.To(false)},
	}
	if !changed {
		t.Error("changed = false")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !*in[0].BlockOwnerDeletion {
		t.Error("input modified")
	}
	if _, changed := unblocked(got); changed {
		t.Error("unblocking unblocked references changed them")
	}
}
