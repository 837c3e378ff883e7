package podset

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestHandler(t *testing.T) {
	gvk := appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	owner := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "u1"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "agent-x", Namespace: "ns",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvk)}}}
	other := pod.DeepCopy()
	other.OwnerReferences[0].Kind = "ReplicaSet"
	now := time.Now()
	exp := NewExpectations()
	var queued []string
	h := Handler(gvk, exp, func(k string) { queued = append(queued, k) })

	exp.Expect("ns/agent", 1, []string{"ns/agent-x"}, now)
	h.OnAdd(other, false) // another kind's pod: ignored
	h.OnAdd(pod, false)
	if exp.Satisfied("ns/agent", now) {
		t.Fatal("deletion still expected, yet satisfied")
	}
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/agent-x", Obj: pod})
	if !exp.Satisfied("ns/agent", now) {
		t.Fatal("creation and deletion observed, not satisfied")
	}
	if diff := cmp.Diff([]string{"ns/agent", "ns/agent"}, queued); diff != "" {
		t.Fatalf("queued (-want +got):\n%s", diff)
	}
	if _, ok := OwnerKey(other, gvk); ok {
		t.Fatal("OwnerKey matched a controller of another kind")
	}
}
