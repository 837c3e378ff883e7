package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

var claimsSeq atomic.Int64

// newClaims returns claims under a prefix of their own in client's etcd.
func newClaims(client *clientv3.Client) *ServiceClaims {
	return NewServiceClaims(client, fmt.Sprintf("/registry/test-serviceallocations-%d/", claimsSeq.Add(1)))
}

// servicesConfig is a services resource under a prefix of its own.
func servicesConfig() storage.Config {
	return storage.Config{
		Prefix:      fmt.Sprintf("/registry/test-services-%d/", claimsSeq.Add(1)),
		GVK:         corev1.SchemeGroupVersion.WithKind("Service"),
		NewFunc:     func() runtime.Object { return &corev1.Service{} },
		NewListFunc: func() runtime.Object { return &corev1.ServiceList{} },
	}
}

func owners(t *testing.T, c *ServiceClaims) map[string]string {
	t.Helper()
	claims, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cl := range claims {
		got[cl.Name] = cl.Owner
	}
	return got
}

func TestServiceClaims(t *testing.T) {
	client := storagetest.StartEtcd(t)
	ctx := context.Background()
	c := newClaims(client)
	const ip = "clusterips/10.43.0.7"

	if err := c.Claim(ctx, ip, "ns/a"); err != nil {
		t.Fatalf("claiming a free address: %v", err)
	}
	if h, err := c.Holder(ctx, ip); err != nil || h != "ns/a" {
		t.Fatalf("holder = %q, %v; want ns/a", h, err)
	}
	before, _ := c.List(ctx)
	if err := c.Claim(ctx, ip, "ns/a"); err != nil {
		t.Fatalf("claiming again by its owner: %v", err)
	}
	after, _ := c.List(ctx)
	if len(before) != 1 || len(after) != 1 || !after[0].At.After(before[0].At) || after[0].rev <= before[0].rev {
		t.Fatalf("a claim made again is not renewed: before %+v, after %+v", before, after)
	}
	if err := c.Claim(ctx, ip, "ns/b"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("claiming another owner's address: %v, want ErrClaimed", err)
	}
	if err := c.Release(ctx, ip, "ns/b"); err != nil {
		t.Fatalf("releasing another owner's claim: %v", err)
	}
	if h, _ := c.Holder(ctx, ip); h != "ns/a" {
		t.Fatalf("another owner's release took the claim: holder %q", h)
	}
	if ok, err := c.releaseIfUnchanged(ctx, before[0]); ok || err != nil {
		t.Fatalf("releasing a claim renewed since it was read: %v, %v", ok, err)
	}
	if err := c.Release(ctx, ip, "ns/a"); err != nil {
		t.Fatal(err)
	}
	if h, _ := c.Holder(ctx, ip); h != "" {
		t.Fatalf("released claim still held by %q", h)
	}
	if err := c.Release(ctx, ip, "ns/a"); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if err := c.Claim(ctx, ip, "ns/b"); err != nil {
		t.Fatalf("claiming a released address: %v", err)
	}

	if err := c.Claim(ctx, "nodeports/30001", "ns/a"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ip: "ns/b", "nodeports/30001": "ns/a"}
	if diff := cmp.Diff(want, owners(t, c)); diff != "" {
		t.Fatalf("claims (-want +got):\n%s", diff)
	}
	// Another prefix is another set of claims.
	if got := owners(t, newClaims(client)); len(got) != 0 {
		t.Fatalf("claims under a fresh prefix: %v", got)
	}

	// An unreadable value is held by nobody that can claim it, and old.
	if _, err := client.Put(ctx, c.prefix+"nodeports/30002", "garbage"); err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, "nodeports/30002", "ns/a"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("claiming over an unreadable claim: %v", err)
	}
	claims, _ := c.List(ctx)
	if cl := claims[len(claims)-1]; cl.Name != "nodeports/30002" || cl.Owner != "" || !cl.At.IsZero() {
		t.Fatalf("unreadable claim listed as %+v", cl)
	}
}

// Of many owners claiming one address at once, exactly one gets it.
func TestServiceClaimsOneWinner(t *testing.T) {
	client := storagetest.StartEtcd(t)
	c := newClaims(client)
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			err := c.Claim(context.Background(), "nodeports/30100", fmt.Sprintf("ns/s%d", i))
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, ErrClaimed):
				t.Errorf("owner %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Fatalf("%d owners got the port, want 1", n)
	}
}

func TestRepair(t *testing.T) {
	client := storagetest.StartEtcd(t)
	ctx := context.Background()
	cfg := servicesConfig()
	store := storage.NewStore(client, cfg)
	claims := newClaims(client)
	a := &ServiceAllocator{Services: store, Prefix: cfg.Prefix, Claims: claims}
	log := slog.New(slog.DiscardHandler)

	// A Service stored before claims existed, and one that holds an
	// address a leaked claim of another (old) owner holds.
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "legacy"}, Spec: corev1.ServiceSpec{
			ClusterIP: "10.43.0.7", ClusterIPs: []string{"10.43.0.7"}, Type: corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30001}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "reused"}, Spec: corev1.ServiceSpec{
			ClusterIP: "10.43.0.8", ClusterIPs: []string{"10.43.0.8"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "headless"}, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}}},
	} {
		if err := store.Create(ctx, storage.Key(cfg.Prefix, s.Namespace, s.Name), s, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, c := range []struct {
		name, owner string
		at          time.Time
	}{
		{"clusterips/10.43.0.8", "ns/gone", old},           // leaked, and the address reused
		{"clusterips/10.43.0.9", "ns/gone", old},           // leaked
		{"nodeports/30009", "ns/legacy", old},              // leaked: legacy holds another port
		{"clusterips/10.43.0.10", "ns/coming", time.Now()}, // fresh: its Service is not stored yet
	} {
		if _, _, err := claims.claim(ctx, c.name, c.owner, c.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.repair(ctx, claimGrace, log); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"clusterips/10.43.0.7":  "ns/legacy",
		"nodeports/30001":       "ns/legacy",
		"clusterips/10.43.0.8":  "ns/reused",
		"clusterips/10.43.0.10": "ns/coming",
	}
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after a pass (-want +got):\n%s", diff)
	}

	// Once its grace has passed, the claim without a Service goes too;
	// Repair runs a pass at once and then every interval, and returns
	// when its context ends.
	if err := a.repair(ctx, 0, log); err != nil {
		t.Fatal(err)
	}
	delete(want, "clusterips/10.43.0.10")
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after the grace (-want +got):\n%s", diff)
	}
	late := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "late"}, Spec: corev1.ServiceSpec{
		ClusterIP: "10.43.0.12", ClusterIPs: []string{"10.43.0.12"}}}
	if err := store.Create(ctx, storage.Key(cfg.Prefix, "ns", "late"), late, nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := claims.claim(ctx, "clusterips/10.43.0.11", "ns/gone", old); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Repair(rctx, 20*time.Millisecond, log)
	}()
	want["clusterips/10.43.0.12"] = "ns/late"
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cmp.Equal(want, owners(t, claims)), nil
	})
	if err != nil {
		t.Fatalf("Repair left %v, want %v", owners(t, claims), want)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Repair did not return after its context ended")
	}
}
