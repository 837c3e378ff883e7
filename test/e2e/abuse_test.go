package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// TestAbuse tries the server as a hostile client would (issue 12), on one
// binary server: each case is something that once hurt it.
func TestAbuse(t *testing.T) {
	const requestTimeout = 3 * time.Second
	c := framework.StartBinary(t, skiffBin, "--request-timeout="+requestTimeout.String())

	// A 2.5 KB JSON patch whose copies double the annotations 17 times
	// once took the server to 1.9 GB.
	t.Run("json patch copy bomb", func(t *testing.T) {
		k := kubectl{t: t, c: c}
		k.ok("create", "configmap", "bomb")
		before := c.PeakRSS(t)
		out := k.fails("patch", "configmap", "bomb", "--type=json", "-p", jsonPatchBomb(17))
		mustContain(t, "kubectl patch", out, "exceeding the limit 3145728")
		grew := c.PeakRSS(t) - before
		t.Logf("the bomb grew the server's peak RSS by %.1f MiB (from %.0f MiB)", float64(grew)/(1<<20), float64(before)/(1<<20))
		if grew > 50<<20 {
			t.Fatalf("the server's peak RSS grew by %d MiB", grew>>20)
		}
		if a := k.jsonpath("configmap/bomb", "{.metadata.annotations}"); a != "" {
			t.Fatalf("the rejected patch changed the object: annotations %.80s", a)
		}
	})

	// A client that trickles its body once held a connection and a
	// goroutine for as long as it liked, with credentials or without.
	t.Run("slow body", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			authed bool
			code   int
			within time.Duration
		}{
			{"authenticated", true, http.StatusGatewayTimeout, requestTimeout + 2*time.Second},
			{"anonymous", false, http.StatusUnauthorized, 2 * time.Second},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, took := trickle(t, c, tc.authed)
				t.Logf("answered %d, connection closed after %v", code, took.Round(time.Millisecond))
				if code != tc.code || took > tc.within {
					t.Fatalf("got %d and the connection closed after %v, want %d within %v", code, took.Round(time.Millisecond), tc.code, tc.within)
				}
			})
		}
	})
}

// trickle POSTs a ConfigMap of 100,000 bytes at ten bytes a second on a
// connection of its own, and returns the code of the answer and how long
// the server took to close the connection.
func trickle(t *testing.T, c *framework.Cluster, authed bool) (int, time.Duration) {
	t.Helper()
	cfg := rest.AnonymousClientConfig(c.Config)
	if authed {
		cfg = c.Config
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: skiff\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	go func() {
		for {
			time.Sleep(100 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	// Nothing the test waits for takes 20 s: past that the server holds on.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%d after %v, then the connection stayed open: %v", resp.StatusCode, time.Since(start).Round(time.Millisecond), err)
	}
	return resp.StatusCode, time.Since(start)
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
