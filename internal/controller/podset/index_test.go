package podset

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSharedPodIndexes(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	inf := factory.Core().V1().Pods().Informer()
	// Two controllers register the same indexes on the shared informer.
	for range 2 {
		if err := AddControllerUIDIndex(inf); err != nil {
			t.Fatalf("AddControllerUIDIndex: %v", err)
		}
		if err := AddOrphanIndex(inf); err != nil {
			t.Fatalf("AddOrphanIndex: %v", err)
		}
	}
	if err := AddControllerUIDIndex(nil); err == nil {
		t.Error("AddControllerUIDIndex(nil): no error")
	}

	yes := true
	owned := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "owned", Namespace: "a",
		OwnerReferences: []metav1.OwnerReference{{UID: "rs-1", Controller: &yes}}}}
	notController := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ref", Namespace: "a",
		OwnerReferences: []metav1.OwnerReference{{UID: "rs-1"}}}}
	orphanB := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "b"}}
	idx := inf.GetIndexer()
	for _, p := range []*corev1.Pod{owned, notController, orphanB} {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}

	got, err := PodsControlledBy(idx, types.UID("rs-1"))
	if err != nil || len(got) != 1 || got[0].Name != "owned" {
		t.Errorf("PodsControlledBy(rs-1) = %v, %v; want [owned]", got, err)
	}
	if got, err := PodsControlledBy(idx, "other"); err != nil || len(got) != 0 {
		t.Errorf("PodsControlledBy(other) = %v, %v; want none", got, err)
	}
	if got, err := OrphanPods(idx, "a"); err != nil || len(got) != 1 || got[0].Name != "ref" {
		t.Errorf("OrphanPods(a) = %v, %v; want [ref]", got, err)
	}
	if got, err := OrphanPods(idx, "b"); err != nil || len(got) != 1 || got[0].Name != "orphan" {
		t.Errorf("OrphanPods(b) = %v, %v; want [orphan]", got, err)
	}
	if got, err := PodsControlledBy(nil, "rs-1"); err != nil || len(got) != 0 {
		t.Errorf("nil indexer: %v, %v", got, err)
	}
}
