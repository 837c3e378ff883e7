package proxy

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
)

var testRuleConfig = ruleConfig{NodeName: "node-a", ClusterCIDR: "10.42.0.0/16"}

// syncFake programs w into a fresh fake table and returns its dump (one
// nft command a line).
func syncFake(t *testing.T, cfg ruleConfig, w world) string {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, "skiff")
	s := newSyncer(fake, []string{"127.0.0.1"})
	if err := s.apply(context.Background(), w.updates(&cfg)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return fake.Dump()
}

// TestRules checks what each kind of Service programs: the lines the table
// must hold and substrings it must not hold.
func TestRules(t *testing.T) {
	const (
		cluster  = "add rule ip skiff cluster/ns/web/tcp/80 "
		local    = "add rule ip skiff local/ns/web/tcp/80 "
		external = "add rule ip skiff external/ns/web/tcp/80 "
		ep5      = "endpoint/ns/web/tcp/80/10.42.0.5/8080"
		ep6      = "endpoint/ns/web/tcp/80/10.42.0.6/8080"
	)
	twoEndpoints := testSlice("web", "web-1", ready("10.42.0.5", "node-a"), ready("10.42.0.6", "node-b"))
	tests := []struct {
		name    string
		svc     *corev1.Service
		slices  []*discoveryv1.EndpointSlice
		cfg     *ruleConfig
		want    []string
		notWant []string
	}{{
		name:   "ClusterIP balances over ready endpoints",
		svc:    testService("web", "10.43.0.10"),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		want: []string{
			"add element ip skiff service-ips { 10.43.0.10 . tcp . 80 : goto cluster/ns/web/tcp/80 }",
			cluster + "ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
			cluster + "numgen random mod 2 vmap { 0 : goto " + ep5 + " , 1 : goto " + ep6 + " }",
			"add rule ip skiff " + ep5 + " ip saddr 10.42.0.5 jump mark-for-masquerade",
			"add rule ip skiff " + ep5 + " meta l4proto tcp dnat to 10.42.0.5:8080",
			"add rule ip skiff " + ep6 + " meta l4proto tcp dnat to 10.42.0.6:8080",
		},
		notWant: []string{"external/", "local/", "affinity/", "element ip skiff no-endpoint-services"},
	}, {
		name:   "masquerade all when there is no cluster CIDR",
		svc:    testService("web", "10.43.0.10"),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		cfg:    &ruleConfig{NodeName: "node-a"},
		want:   []string{cluster + "ip daddr 10.43.0.10 tcp dport 80 jump mark-for-masquerade"},
	}, {
		name:   "NodePort masquerades and balances over all endpoints",
		svc:    testService("web", "10.43.0.10", nodePort(30080)),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		want: []string{
			"add element ip skiff service-nodeports { tcp . 30080 : goto external/ns/web/tcp/80 }",
			"add element ip skiff nodeport-ips { 127.0.0.1 }",
			external + "jump mark-for-masquerade",
			external + "goto cluster/ns/web/tcp/80",
		},
	}, {
		name:   "LoadBalancer ingress IPs",
		svc:    testService("web", "10.43.0.10", loadBalancer(30080, "192.0.2.200")),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		want: []string{
			"add element ip skiff service-ips { 192.0.2.200 . tcp . 80 : goto external/ns/web/tcp/80 }",
			"add element ip skiff service-ips { 10.43.0.10 . tcp . 80 : goto cluster/ns/web/tcp/80 }",
			"add element ip skiff service-nodeports { tcp . 30080 : goto external/ns/web/tcp/80 }",
		},
	}, {
		name:   "externalTrafficPolicy Local sends external traffic to local endpoints only",
		svc:    testService("web", "10.43.0.10", loadBalancer(30080, "192.0.2.200"), externalLocal),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		want: []string{
			external + "ip saddr 10.42.0.0/16 goto cluster/ns/web/tcp/80",
			external + "fib saddr type local jump mark-for-masquerade",
			external + "fib saddr type local goto cluster/ns/web/tcp/80",
			external + "goto local/ns/web/tcp/80",
			local + "numgen random mod 1 vmap { 0 : goto " + ep5 + " }",
			cluster + "numgen random mod 2 vmap { 0 : goto " + ep5 + " , 1 : goto " + ep6 + " }",
		},
		notWant: []string{external + "jump mark-for-masquerade", "element ip skiff no-endpoint-"},
	}, {
		name:   "externalTrafficPolicy Local without local endpoints drops external traffic",
		svc:    testService("web", "10.43.0.10", loadBalancer(30080, "192.0.2.200"), externalLocal),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", "web-1", ready("10.42.0.6", "node-b"))},
		want: []string{
			"add element ip skiff no-endpoint-nodeports { tcp . 30080 : drop }",
			"add element ip skiff no-endpoint-services { 192.0.2.200 . tcp . 80 : drop }",
			"add element ip skiff service-nodeports { tcp . 30080 : goto external/ns/web/tcp/80 }",
			"add element ip skiff service-ips { 10.43.0.10 . tcp . 80 : goto cluster/ns/web/tcp/80 }",
			external + "fib saddr type local goto cluster/ns/web/tcp/80",
		},
		notWant: []string{"local/ns", external + "goto local"},
	}, {
		name:   "internalTrafficPolicy Local",
		svc:    testService("web", "10.43.0.10", internalLocal),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		want: []string{
			"add element ip skiff service-ips { 10.43.0.10 . tcp . 80 : goto local/ns/web/tcp/80 }",
			local + "ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
			local + "numgen random mod 1 vmap { 0 : goto " + ep5 + " }",
		},
		notWant: []string{"cluster/ns", ep6},
	}, {
		name:    "internalTrafficPolicy Local without local endpoints drops",
		svc:     testService("web", "10.43.0.10", internalLocal),
		slices:  []*discoveryv1.EndpointSlice{testSlice("web", "web-1", ready("10.42.0.6", "node-b"))},
		want:    []string{"add element ip skiff no-endpoint-services { 10.43.0.10 . tcp . 80 : drop }"},
		notWant: []string{"element ip skiff service-ips", "/ns/web"},
	}, {
		name:   "sessionAffinity ClientIP",
		svc:    testService("web", "10.43.0.10", clientIPAffinity(60)),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints},
		want: []string{
			"add set ip skiff affinity/ns/web/tcp/80/10.42.0.5/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }",
			cluster + "ip saddr @affinity/ns/web/tcp/80/10.42.0.5/8080 goto " + ep5,
			cluster + "ip saddr @affinity/ns/web/tcp/80/10.42.0.6/8080 goto " + ep6,
			"add rule ip skiff " + ep5 + " update @affinity/ns/web/tcp/80/10.42.0.5/8080 { ip saddr }",
		},
	}, {
		name:   "no endpoints rejects",
		svc:    testService("web", "10.43.0.10", nodePort(30080)),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", "web-1", testEndpoint{ip: "10.42.0.5", node: "node-a"})},
		want: []string{
			"add element ip skiff no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }",
			"add element ip skiff no-endpoint-nodeports { tcp . 30080 : goto reject-chain }",
		},
		notWant: []string{"/ns/web", "element ip skiff service-ips", "element ip skiff service-nodeports"},
	}, {
		name: "terminating serving endpoints are used when none is ready",
		svc:  testService("web", "10.43.0.10"),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", "web-1",
			terminating("10.42.0.5", "node-a", true), terminating("10.42.0.6", "node-b", false))},
		want:    []string{cluster + "numgen random mod 1 vmap { 0 : goto " + ep5 + " }"},
		notWant: []string{ep6},
	}, {
		name: "terminating endpoints are not used while one is ready",
		svc:  testService("web", "10.43.0.10"),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", "web-1",
			terminating("10.42.0.5", "node-a", true), ready("10.42.0.6", "node-b"))},
		want:    []string{cluster + "numgen random mod 1 vmap { 0 : goto " + ep6 + " }"},
		notWant: []string{ep5},
	}, {
		name:    "node-local Services are left alone",
		svc:     testService("web", "10.43.0.10", labelled(LabelNodeLocal, "true")),
		slices:  []*discoveryv1.EndpointSlice{twoEndpoints},
		notWant: []string{"10.43.0.10", "/ns/web"},
	}, {
		name:    "headless Services are left alone",
		svc:     testService("web", corev1.ClusterIPNone),
		slices:  []*discoveryv1.EndpointSlice{twoEndpoints},
		notWant: []string{"/ns/web", "element ip skiff service-ips", "element ip skiff no-endpoint"},
	}, {
		name: "duplicate endpoints across slices count once",
		svc:  testService("web", "10.43.0.10"),
		slices: []*discoveryv1.EndpointSlice{twoEndpoints,
			testSlice("web", "web-2", ready("10.42.0.5", "node-a"))},
		want: []string{cluster + "numgen random mod 2 vmap { 0 : goto " + ep5 + " , 1 : goto " + ep6 + " }"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testRuleConfig
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			dump := syncFake(t, cfg, world{services: []*corev1.Service{tt.svc}, slices: tt.slices})
			lines := map[string]bool{}
			for _, l := range strings.Split(dump, "\n") {
				lines[l] = true
			}
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("missing line:\n%s", w)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(dump, nw) {
					t.Errorf("table contains %q", nw)
				}
			}
			if t.Failed() {
				t.Logf("table:\n%s", dump)
			}
		})
	}
}
