package proxy

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

// testLog writes the proxy's log to the test's.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

var _ io.Writer = testWriter{}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProxierFollowsTheAPI runs the Proxier's informers and sync loop
// against a fake clientset and a fake nftables: the table follows slice
// changes and Service deletion, and is deleted when the context ends.
func TestProxierFollowsTheAPI(t *testing.T) {
	w := threeServices(ready("10.42.1.1", "node-a"), ready("10.42.1.2", "node-b"))
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range w.services {
		if _, err := client.CoreV1().Services("ns").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range w.slices {
		if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	nft := knftables.NewFake(knftables.IPv4Family, "skiff")
	p, err := newProxier(Config{
		NodeName: "node-a", NodeIPs: []string{"127.0.0.1"}, ClusterCIDR: "10.42.0.0/16",
		Client: client, MinSyncPeriod: time.Millisecond, Log: testLog(t),
	}, nft)
	if err != nil {
		t.Fatal(err)
	}
	p.prepareHost = func() bool { return true }
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()

	select {
	case <-p.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not sync")
	}
	has := func(s string) bool { return strings.Contains(nft.Dump(), s) }
	if !has("numgen random mod 2 vmap { 0 : goto endpoint/ns/b/tcp/80/10.42.1.1/8080 , 1 : goto endpoint/ns/b/tcp/80/10.42.1.2/8080 }") {
		t.Fatalf("first sync misses b's endpoints:\n%s", nft.Dump())
	}

	b := w.slices[1].DeepCopy()
	b.Endpoints = b.Endpoints[:1]
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b down to one endpoint", 10*time.Second, func() bool {
		return has("numgen random mod 1 vmap { 0 : goto endpoint/ns/b/tcp/80/10.42.1.1/8080 }")
	})

	if err := client.CoreV1().Services("ns").Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c's ClusterIP gone", 10*time.Second, func() bool { return !has("10.43.0.3") })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return")
	}
	if d := nft.Dump(); d != "" {
		t.Errorf("table left behind:\n%s", d)
	}
}
