package integration

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// TestLargeResponsesAreGzipped: a LIST above 128 KiB is gzipped for a client
// that accepts it (as upstream), a small GET is not, and client-go, which
// asks for gzip by default, reads both.
func TestLargeResponsesAreGzipped(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := context.Background()
	big := strings.Repeat("x", 2048)
	for i := 0; i < 100; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"v": big}}
		if _, err := c.Client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := rest.TransportFor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, accept string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, c.Config.Host+path, nil)
		req.Header.Set("Accept", "application/json")
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept) // set by hand: Go's transport then leaves the body as sent
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	resp, body := get("/api/v1/namespaces/default/configmaps", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("a %d-byte list was not gzipped: Content-Encoding %q", len(body), resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var list corev1.ConfigMapList
	if err := json.Unmarshal(plain, &list); err != nil || len(list.Items) != 100 {
		t.Fatalf("gunzipped list: %d items, %v", len(list.Items), err)
	}
	if len(body) >= len(plain)/4 {
		t.Fatalf("gzip did little: %d bytes for %d", len(body), len(plain))
	}

	if resp, _ := get("/api/v1/namespaces/default/configmaps", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzipped for a client that refuses gzip")
	}
	if resp, _ := get("/api/v1/namespaces/default/configmaps/cm-1", "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("a small GET was gzipped")
	}
	if l, err := c.Client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 100 {
		t.Fatalf("client-go list: %v items, %v", len(l.Items), err)
	}
}
