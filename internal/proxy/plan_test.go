package proxy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
)

// fakeClock is a settable clock for the syncer's stale-chain delay.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newFakeSyncer() (*syncer, *knftables.Fake, *fakeClock) {
	fake := knftables.NewFake(knftables.IPv4Family, "skiff")
	s := newSyncer(fake, []string{"127.0.0.1"})
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s.now = clock.now
	return s, fake, clock
}

// threeServices is ns/a, ns/b and ns/c with three endpoints each; b's are
// given.
func threeServices(bEndpoints ...testEndpoint) world {
	return world{
		services: []*corev1.Service{
			testService("a", "10.43.0.1"),
			testService("b", "10.43.0.2", nodePort(30002)),
			testService("c", "10.43.0.3"),
		},
		slices: []*discoveryv1.EndpointSlice{
			testSlice("a", "a-1", ready("10.42.0.1", "node-a"), ready("10.42.0.2", "node-a"), ready("10.42.0.3", "node-b")),
			testSlice("b", "b-1", bEndpoints...),
			testSlice("c", "c-1", ready("10.42.2.1", "node-a"), ready("10.42.2.2", "node-a"), ready("10.42.2.3", "node-b")),
		},
	}
}

// dumpLines is a fake's dump as sorted lines: the fake keeps map elements
// in insertion order, which differs between incremental and fresh tables.
func dumpLines(dump string) []string {
	lines := strings.Split(strings.TrimSpace(dump), "\n")
	slices.Sort(lines)
	return lines
}

func txLines(tx *knftables.Transaction) []string {
	return strings.Split(strings.TrimSpace(tx.String()), "\n")
}

// TestOneEndpointChangeTouchesOnlyItsChains: with every service recomputed,
// removing one endpoint rewrites only that service's balancing chain and
// flushes the endpoint's chain; adding it back recreates just those two.
func TestOneEndpointChangeTouchesOnlyItsChains(t *testing.T) {
	ctx := context.Background()
	cfg := testRuleConfig
	s, fake, clock := newFakeSyncer()
	b1, b2, b3 := ready("10.42.1.1", "node-a"), ready("10.42.1.2", "node-a"), ready("10.42.1.3", "node-b")
	if err := s.apply(ctx, threeServices(b1, b2, b3).updates(&cfg)); err != nil {
		t.Fatal(err)
	}

	if err := s.apply(ctx, threeServices(b1, b2).updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"add chain ip skiff cluster/ns/b/tcp/80",
		"flush chain ip skiff cluster/ns/b/tcp/80",
		"flush chain ip skiff endpoint/ns/b/tcp/80/10.42.1.3/8080",
		"add rule ip skiff cluster/ns/b/tcp/80 ip daddr 10.43.0.2 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
		"add rule ip skiff cluster/ns/b/tcp/80 numgen random mod 2 vmap { 0 : goto endpoint/ns/b/tcp/80/10.42.1.1/8080 , 1 : goto endpoint/ns/b/tcp/80/10.42.1.2/8080 }",
	}
	if diff := cmp.Diff(want, txLines(fake.LastTransaction)); diff != "" {
		t.Errorf("transaction after removing an endpoint (-want +got):\n%s", diff)
	}

	// The flushed chain is deleted once the delay has passed, in its own
	// transaction; nothing else changes.
	clock.t = clock.t.Add(2 * staleChainDelay)
	if err := s.apply(ctx, threeServices(b1, b2).updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"delete chain ip skiff endpoint/ns/b/tcp/80/10.42.1.3/8080"}, txLines(fake.LastTransaction)); diff != "" {
		t.Errorf("stale chain deletion (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(dumpLines(syncFake(t, cfg, threeServices(b1, b2))), dumpLines(fake.Dump())); diff != "" {
		t.Errorf("incremental table differs from a fresh one (-fresh +incremental):\n%s", diff)
	}

	if err := s.apply(ctx, threeServices(b1, b2, b3).updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"add chain ip skiff cluster/ns/b/tcp/80",
		"flush chain ip skiff cluster/ns/b/tcp/80",
		"add chain ip skiff endpoint/ns/b/tcp/80/10.42.1.3/8080",
		"flush chain ip skiff endpoint/ns/b/tcp/80/10.42.1.3/8080",
		"add rule ip skiff cluster/ns/b/tcp/80 ip daddr 10.43.0.2 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
		"add rule ip skiff cluster/ns/b/tcp/80 numgen random mod 3 vmap { 0 : goto endpoint/ns/b/tcp/80/10.42.1.1/8080 , 1 : goto endpoint/ns/b/tcp/80/10.42.1.2/8080 , 2 : goto endpoint/ns/b/tcp/80/10.42.1.3/8080 }",
		"add rule ip skiff endpoint/ns/b/tcp/80/10.42.1.3/8080 ip saddr 10.42.1.3 jump mark-for-masquerade",
		"add rule ip skiff endpoint/ns/b/tcp/80/10.42.1.3/8080 meta l4proto tcp dnat to 10.42.1.3:8080",
	}
	if diff := cmp.Diff(want, txLines(fake.LastTransaction)); diff != "" {
		t.Errorf("transaction after adding an endpoint (-want +got):\n%s", diff)
	}
}

// incrementalSteps is a sequence of worlds that exercises every kind of
// change: endpoints coming and going, services deleted, affinity on, off and
// retimed, policies and the node-local label.
func incrementalSteps() []struct {
	name  string
	world world
} {
	b1, b2, b3 := ready("10.42.1.1", "node-a"), ready("10.42.1.2", "node-a"), ready("10.42.1.3", "node-b")
	base := threeServices(b1, b2, b3)
	return []struct {
		name  string
		world world
	}{
		{"start", base},
		{"b loses all endpoints", threeServices()},
		{"b back, only terminating", threeServices(terminating("10.42.1.1", "node-a", true))},
		{"b ready again", base},
		{"c deleted", world{services: base.services[:2], slices: base.slices}},
		{"a gets affinity", world{services: []*corev1.Service{testService("a", "10.43.0.1", clientIPAffinity(60)), base.services[1]}, slices: base.slices}},
		{"a affinity timeout changes", world{services: []*corev1.Service{testService("a", "10.43.0.1", clientIPAffinity(90)), base.services[1]}, slices: base.slices}},
		{"a loses affinity, b becomes Local", world{services: []*corev1.Service{base.services[0], testService("b", "10.43.0.2", nodePort(30002), externalLocal)}, slices: base.slices}},
		{"b node-local", world{services: []*corev1.Service{base.services[0], testService("b", "10.43.0.2", labelled(LabelNodeLocal, "true"))}, slices: base.slices}},
		{"everything", base},
	}
}

// TestIncrementalMatchesFresh walks through a sequence of worlds; after each
// step (and the stale-chain delay) the incrementally maintained table must
// equal one programmed from scratch.
func TestIncrementalMatchesFresh(t *testing.T) {
	steps := incrementalSteps()
	ctx := context.Background()
	cfg := testRuleConfig
	s, fake, clock := newFakeSyncer()
	for _, step := range steps {
		// Services missing from the world are reported deleted, as the
		// proxier does for keys it has applied.
		updates := step.world.updates(&cfg)
		for key := range s.applied {
			if _, ok := updates[key]; !ok {
				updates[key] = nil
			}
		}
		if err := s.apply(ctx, updates); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		clock.t = clock.t.Add(2 * staleChainDelay)
		if err := s.apply(ctx, step.world.updates(&cfg)); err != nil {
			t.Fatalf("%s (stale deletion): %v", step.name, err)
		}
		if diff := cmp.Diff(dumpLines(syncFake(t, cfg, step.world)), dumpLines(fake.Dump())); diff != "" {
			t.Errorf("%s: incremental table differs from a fresh one (-fresh +incremental):\n%s", step.name, diff)
		}
	}
}

// TestFullSyncRemovesLeftovers: a table left by an earlier run (chains and
// affinity sets of services that no longer exist) is cleaned by the first
// sync, and a later full sync (after a failure) does the same.
func TestFullSyncRemovesLeftovers(t *testing.T) {
	ctx := context.Background()
	cfg := testRuleConfig
	old, fake, clock := newFakeSyncer()
	gone := world{services: []*corev1.Service{testService("gone", "10.43.0.9", clientIPAffinity(60))},
		slices: []*discoveryv1.EndpointSlice{testSlice("gone", "gone-1", ready("10.42.9.9", "node-a"))}}
	if err := old.apply(ctx, gone.updates(&cfg)); err != nil {
		t.Fatal(err)
	}

	s := newSyncer(fake, []string{"127.0.0.1"}) // a restart
	s.now = clock.now
	w := threeServices(ready("10.42.1.1", "node-a"))
	if err := s.apply(ctx, w.updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(2 * staleChainDelay)
	if err := s.apply(ctx, w.updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dumpLines(syncFake(t, cfg, w)), dumpLines(fake.Dump())); diff != "" {
		t.Errorf("table after restart differs from a fresh one (-fresh +got):\n%s", diff)
	}

	// A failed sync makes the next one full: it converges too.
	s.needFull = true
	w2 := threeServices(ready("10.42.1.2", "node-a"))
	if err := s.apply(ctx, w2.updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(2 * staleChainDelay)
	if err := s.apply(ctx, w2.updates(&cfg)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dumpLines(syncFake(t, cfg, w2)), dumpLines(fake.Dump())); diff != "" {
		t.Errorf("table after a full resync differs from a fresh one (-fresh +got):\n%s", diff)
	}
}
