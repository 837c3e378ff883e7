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

func TestPatchShape(t *testing.T) {
	nested := func(depth int) string {
		return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat("}", depth-1)
	}
	list := func(n int) string {
		return `{"spec":{"containers":[` + strings.TrimSuffix(strings.Repeat(`{"name":"c"},`, n), ",") + `]}}`
	}
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"100 levels", nested(100), true},
		{"101 levels", nested(101), false},
		{"deep arrays", strings.Repeat("[", 101) + strings.Repeat("]", 101), false},
		{"braces in strings", `{"a":"` + strings.Repeat(`{[\"`, 200) + `"}`, true},
		{"2000 objects in a list", list(2000), true},
		{"2001 objects in a list", list(2001), false},
		{"long list of strings", `{"metadata":{"finalizers":[` + strings.TrimSuffix(strings.Repeat(`"f",`, 5000), ",") + `]}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPatchShape([]byte(tc.doc), true)
			if tc.ok != (err == nil) {
				t.Fatalf("checkPatchShape: %v", err)
			}
			if !tc.ok && !apierrors.IsRequestEntityTooLargeError(err) {
				t.Fatalf("got %v, want 413", err)
			}
			// An apply configuration of the same shape gets the same answer.
			_, err = decodeApplyPatch("application/apply-patch+yaml", []byte(tc.doc))
			if tc.ok != (err == nil) {
				t.Fatalf("decodeApplyPatch: %v", err)
			}
		})
	}
}

// The patches that cost quadratic time or memory in the libraries that
// apply them are refused before they are applied.
func TestPatchShapeBombs(t *testing.T) {
	cm := &corev1.ConfigMap{}
	deep := `{"data":` + strings.Repeat(`{"a":`, 9000) + "1" + strings.Repeat("}", 9000) + "}"
	var containers strings.Builder
	containers.WriteString(`{"spec":{"containers":[`)
	for i := 0; i < 8000; i++ {
		if i > 0 {
			containers.WriteString(",")
		}
		fmt.Fprintf(&containers, `{"name":"c%d"}`, i)
	}
	containers.WriteString(`]}}`)
	for _, tc := range []struct{ name, contentType, body string }{
		// Applied, 1.9 GB and 8 s.
		{"deep merge patch", "application/merge-patch+json", deep},
		{"deep strategic merge patch", "application/strategic-merge-patch+json", deep},
		// Applied, 3 s of CPU; the 150,000 that fit in a body, hours.
		{"strategic merge patch of 8,000 containers", "application/strategic-merge-patch+json", containers.String()},
		{"deep JSON patch", "application/json-patch+json", `[{"op":"add","path":"/data","value":` + deep + `}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := patcher(tc.contentType, []byte(tc.body), cm)
			if !apierrors.IsRequestEntityTooLargeError(err) {
				t.Fatalf("got %v, want 413", err)
			}
		})
	}
}
