package apiserver

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// patchBomb is the JSON patch of issue 12: an annotation of 1,000 bytes,
// then copies of the annotations into themselves, each doubling them
// (2^copies KB unbounded).
func patchBomb(copies int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `[{"op":"add","path":"/metadata/annotations","value":{"a0":"%s"}}`, strings.Repeat("x", 1000))
	for i := 1; i <= copies; i++ {
		fmt.Fprintf(&b, `,{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/a%d"}`, i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

func TestPatchBounds(t *testing.T) {
	cm := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"d"}}`)
	op := `{"op":"add","path":"/metadata/labels","value":{}}`
	ops := func(n int) []byte { return []byte("[" + strings.Repeat(op+",", n-1) + op + "]") }

	t.Run("operations", func(t *testing.T) {
		if _, err := patcher("application/json-patch+json", ops(maxJSONPatchOperations), &corev1.ConfigMap{}); err != nil {
			t.Fatalf("%d operations: %v", maxJSONPatchOperations, err)
		}
		_, err := patcher("application/json-patch+json", ops(maxJSONPatchOperations+1), &corev1.ConfigMap{})
		if !apierrors.IsRequestEntityTooLargeError(err) || !strings.Contains(err.Error(), "maximum operations in a JSON patch is 10000, got 10001") {
			t.Fatalf("%d operations: got %v, want 413 naming the limit", maxJSONPatchOperations+1, err)
		}
	})

	t.Run("copy bomb", func(t *testing.T) {
		apply, err := patcher("application/json-patch+json", patchBomb(17), &corev1.ConfigMap{})
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = apply(cm)
		runtime.ReadMemStats(&after)
		if code, detail := status(err); code != 422 || !strings.Contains(detail, "exceeding the limit 3145728") {
			t.Fatalf("got %d %q, want 422 about the copy limit", code, detail)
		}
		// Unbounded, the 17 copies allocate gigabytes.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 50<<20 {
			t.Fatalf("applying the bomb allocated %d MiB", alloc>>20)
		}
	})

	t.Run("copies within the bound", func(t *testing.T) {
		apply, err := patcher("application/json-patch+json", patchBomb(8), &corev1.ConfigMap{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := apply(cm)
		if err != nil || len(out) < 256*1000 {
			t.Fatalf("8 copies (256 KB): %d bytes, %v", len(out), err)
		}
	})
}

// status is an API error's code and its message with its causes'.
func status(err error) (int, string) {
	s, ok := err.(apierrors.APIStatus)
	if !ok {
		return 0, fmt.Sprint(err)
	}
	st := s.Status()
	msg := st.Message
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			msg += "; " + c.Message
		}
	}
	return int(st.Code), msg
}
