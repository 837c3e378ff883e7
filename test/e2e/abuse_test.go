package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skiff-io/skiff/test/framework"
)

// TestAbuse tries the server as a hostile client would (issue 12), on one
// binary server: each case is something that once hurt it.
func TestAbuse(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)

	// A 2.5 KB JSON patch whose copies double the annotations 17 times
	// once took the server to 1.9 GB.
	t.Run("json patch copy bomb", func(t *testing.T) {
		k := kubectl{t: t, c: c}
		k.ok("create", "configmap", "bomb")
		before := c.PeakRSS(t)
		out := k.fails("patch", "configmap", "bomb", "--type=json", "-p", jsonPatchBomb(17))
		mustContain(t, "kubectl patch", out, "exceeding the limit 3145728")
		if grew := c.PeakRSS(t) - before; grew > 50<<20 {
			t.Fatalf("the server's peak RSS grew by %d MiB", grew>>20)
		}
		if a := k.jsonpath("configmap/bomb", "{.metadata.annotations}"); a != "" {
			t.Fatalf("the rejected patch changed the object: annotations %.80s", a)
		}
	})
}

// jsonPatchBomb adds an annotation of 1,000 bytes, then copies the
// annotations into themselves, doubling them with each copy.
func jsonPatchBomb(copies int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[{"op":"add","path":"/metadata/annotations","value":{"a0":"%s"}}`, strings.Repeat("x", 1000))
	for i := 1; i <= copies; i++ {
		fmt.Fprintf(&b, `,{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/a%d"}`, i)
	}
	return b.String() + "]"
}
