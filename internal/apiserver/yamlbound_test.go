package apiserver

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// aliasBomb is a ConfigMap of one anchored 1 MiB string and 400 aliases
// of it: a 1 MB body that once decoded to 400 MiB of JSON, with 3 GB
// allocated on the way.
func aliasBomb() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  k0: &s %s\n", strings.Repeat("x", 1<<20))
	for i := 1; i <= 400; i++ {
		fmt.Fprintf(&b, "  k%d: *s\n", i)
	}
	return []byte(b.String())
}

func TestYAMLExpansion(t *testing.T) {
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	t.Run("alias bomb", func(t *testing.T) {
		for name, decode := range map[string]func([]byte) error{
			"create": func(b []byte) error {
				_, _, err := decodeWith("application/yaml", "Strict", b, gvk, &corev1.ConfigMap{}, nil)
				return err
			},
			"apply": func(b []byte) error {
				_, err := decodeApplyPatch("application/apply-patch+yaml", b)
				return err
			},
		} {
			body := aliasBomb()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := decode(body)
			runtime.ReadMemStats(&after)
			if !apierrors.IsRequestEntityTooLargeError(err) {
				t.Errorf("%s: got %v, want 413", name, err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 50<<20 {
				t.Errorf("%s: decoding the bomb allocated %d MiB", name, alloc>>20)
			}
		}
	})
	t.Run("aliases within the bound", func(t *testing.T) {
		body := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n  labels: &l {app: web}\n  annotations: *l\ndata: {verbs: '*'}\n"
		obj, _, err := decodeWith("application/yaml", "Strict", []byte(body), gvk, &corev1.ConfigMap{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cm := obj.(*corev1.ConfigMap); cm.Annotations["app"] != "web" || cm.Data["verbs"] != "*" {
			t.Fatalf("decoded %+v", cm)
		}
	})
}
