package persistentvolume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWrittenPrefersNewerWrites(t *testing.T) {
	at := func(rv string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "v", ResourceVersion: rv}}
	}
	w := newWritten[*corev1.PersistentVolume]()
	if got := w.newer("v", at("5")); got.ResourceVersion != "5" {
		t.Fatalf("nothing written: got rv %s, want the cached 5", got.ResourceVersion)
	}
	w.remember("v", at("7"))
	if got := w.newer("v", at("5")); got.ResourceVersion != "7" {
		t.Fatalf("cache behind: got rv %s, want the written 7", got.ResourceVersion)
	}
	if got := w.newer("v", at("7")); got.ResourceVersion != "7" {
		t.Fatalf("cache caught up: got rv %s, want 7", got.ResourceVersion)
	}
	if _, ok := w.m["v"]; ok {
		t.Fatal("write still remembered after the cache caught up")
	}
	w.remember("v", at("9"))
	if got := w.newer("v", at("")); got.ResourceVersion != "" {
		t.Fatalf("unparsable cached version: got rv %q, want the cached copy", got.ResourceVersion)
	}
	w.remember("v", at("9"))
	w.forget("v")
	if got := w.newer("v", at("3")); got.ResourceVersion != "3" {
		t.Fatalf("after forget: got rv %s, want the cached 3", got.ResourceVersion)
	}
}
