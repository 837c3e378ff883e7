package admission

import (
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func class(name string, created time.Time, annotations map[string]string) storagev1.StorageClass {
	return storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created), Annotations: annotations}}
}

// The default class is the newest of those marked default (either
// annotation), then the first by name; none when none is marked.
func TestDefaultClass(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	on := map[string]string{isDefaultClass: "true"}
	beta := map[string]string{isDefaultClassBeta: "true"}
	for _, c := range []struct {
		want    string
		classes []storagev1.StorageClass
	}{
		{"", nil},
		{"", []storagev1.StorageClass{class("a", t0, nil), class("b", t0, map[string]string{isDefaultClass: "false"})}},
		{"b", []storagev1.StorageClass{class("a", t0, nil), class("b", t0, on)}},
		{"old-beta", []storagev1.StorageClass{class("old-beta", t0, beta)}},
		{"new", []storagev1.StorageClass{class("old", t0, on), class("new", t0.Add(time.Second), on), class("older", t0.Add(-time.Second), beta)}},
		{"x", []storagev1.StorageClass{class("y", t0, on), class("x", t0, on)}},
	} {
		got := ""
		if d := DefaultClass(c.classes); d != nil {
			got = d.Name
		}
		if got != c.want {
			t.Errorf("default of %d classes: %q, want %q", len(c.classes), got, c.want)
		}
	}
}
