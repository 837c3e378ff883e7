package local

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lbService(name, requested string, ingress ...string) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: requested},
	}
	for _, ip := range ingress {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return svc
}

func ingressIP(t *testing.T, st *corev1.LoadBalancerStatus) string {
	t.Helper()
	if st == nil || len(st.Ingress) != 1 {
		t.Fatalf("status %+v, want one ingress point", st)
	}
	ing := st.Ingress[0]
	if ing.IPMode == nil || *ing.IPMode != corev1.LoadBalancerIPModeVIP {
		t.Fatalf("ingress %+v, want ipMode VIP", ing)
	}
	return ing.IP
}

func TestProviderLoadBalancer(t *testing.T) {
	ctx := context.Background()
	p, err := New("127.0.100.0/29")
	if err != nil {
		t.Fatal(err)
	}
	lb, ok := p.LoadBalancer()
	if !ok {
		t.Fatal("no load balancer")
	}
	a := lbService("a", "")
	if _, exists, _ := lb.GetLoadBalancer(ctx, a); exists {
		t.Fatal("load balancer exists before EnsureLoadBalancer")
	}
	st, err := lb.EnsureLoadBalancer(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ip := ingressIP(t, st); ip != "127.0.100.1" {
		t.Fatalf("a got %s, want 127.0.100.1", ip)
	}
	if got, exists, _ := lb.GetLoadBalancer(ctx, a); !exists || ingressIP(t, got) != "127.0.100.1" {
		t.Fatalf("GetLoadBalancer = %+v, %v", got, exists)
	}
	// Idempotent.
	if st, _ := lb.EnsureLoadBalancer(ctx, a, nil); ingressIP(t, st) != "127.0.100.1" {
		t.Fatal("second EnsureLoadBalancer moved the address")
	}

	// A requested address in the pool; then one held by a; one outside.
	b := lbService("b", "127.0.100.5")
	if st, err := lb.EnsureLoadBalancer(ctx, b, nil); err != nil || ingressIP(t, st) != "127.0.100.5" {
		t.Fatalf("b: %+v, %v; want 127.0.100.5", st, err)
	}
	c := lbService("c", "127.0.100.1")
	if _, err := lb.EnsureLoadBalancer(ctx, c, nil); !errors.Is(err, ErrAddressInUse) {
		t.Fatalf("c asked for a's address: err %v, want ErrAddressInUse", err)
	}
	c.Spec.LoadBalancerIP = "10.9.9.9"
	if _, err := lb.EnsureLoadBalancer(ctx, c, nil); !errors.Is(err, ErrNotInPool) {
		t.Fatalf("c asked for an outside address: err %v, want ErrNotInPool", err)
	}

	// Deleting frees the address; deleting again is fine.
	if err := lb.EnsureLoadBalancerDeleted(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := lb.EnsureLoadBalancerDeleted(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, exists, _ := lb.GetLoadBalancer(ctx, a); exists {
		t.Fatal("load balancer exists after EnsureLoadBalancerDeleted")
	}
	c.Spec.LoadBalancerIP = ""
	if st, _ := lb.EnsureLoadBalancer(ctx, c, nil); ingressIP(t, st) != "127.0.100.1" {
		t.Fatal("c did not get a's freed address")
	}

	// A status address that is free is kept (an assignment Restore missed).
	d := lbService("d", "", "127.0.100.4")
	if st, _ := lb.EnsureLoadBalancer(ctx, d, nil); ingressIP(t, st) != "127.0.100.4" {
		t.Fatalf("d did not keep its status address: %+v", st)
	}
	// A status address that is taken is not.
	e := lbService("e", "", "127.0.100.4")
	if st, _ := lb.EnsureLoadBalancer(ctx, e, nil); ingressIP(t, st) != "127.0.100.2" {
		t.Fatalf("e: %+v, want the lowest free 127.0.100.2", st)
	}
	// Pool of six is now full: c .1, e .2, d .4, b .5; .3 and .6 left.
	for _, n := range []string{"f", "g"} {
		if _, err := lb.EnsureLoadBalancer(ctx, lbService(n, ""), nil); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if _, err := lb.EnsureLoadBalancer(ctx, lbService("h", ""), nil); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("h: err %v, want ErrPoolExhausted", err)
	}
}

func TestProviderRestore(t *testing.T) {
	ctx := context.Background()
	p, err := New("127.0.100.0/24")
	if err != nil {
		t.Fatal(err)
	}
	old, young := lbService("old", "", "127.0.100.9"), lbService("young", "", "127.0.100.9")
	old.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	young.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	outside := lbService("outside", "", "192.0.2.1", "127.0.100.20")
	none := lbService("none", "")
	// Young first: the order given must not matter.
	if err := p.Restore(ctx, []*corev1.Service{young, outside, old, none}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, svc := range []*corev1.Service{old, young, outside, none, lbService("new", "")} {
		st, err := p.EnsureLoadBalancer(ctx, svc, nil)
		if err != nil {
			t.Fatal(err)
		}
		got[svc.Name] = ingressIP(t, st)
	}
	want := map[string]string{
		"old":     "127.0.100.9",
		"young":   "127.0.100.1",
		"outside": "127.0.100.20",
		"none":    "127.0.100.2",
		"new":     "127.0.100.3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("addresses (-want +got):\n%s", diff)
	}
}

func TestProviderInstances(t *testing.T) {
	p, _ := New("")
	in, ok := p.Instances()
	if !ok {
		t.Fatal("no instances")
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	if ok, err := in.InstanceExists(context.Background(), node); !ok || err != nil {
		t.Fatalf("InstanceExists = %v, %v", ok, err)
	}
	if down, err := in.InstanceShutdown(context.Background(), node); down || err != nil {
		t.Fatalf("InstanceShutdown = %v, %v", down, err)
	}
}
