package proxy

import (
	"context"
	"os/exec"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// discardNFT is a fake that accepts every transaction without applying it:
// what is left to measure is building the rules and the transaction.
type discardNFT struct{ *knftables.Fake }

func (discardNFT) Run(context.Context, *knftables.Transaction) error { return nil }

const benchServices, benchEndpoints = 1000, 10

// benchOneEndpointChange measures the sync after one endpoint of one
// service (a different one each time) goes away or comes back, in a table
// of 1,000 services with 10 endpoints each: rebuilding that service's rules
// (as the proxier does for a dirty service), diffing and running the
// transaction.
func benchOneEndpointChange(b *testing.B, nft knftables.Interface) {
	ctx := context.Background()
	cfg := testRuleConfig
	w := bigWorld(benchServices, benchEndpoints)
	s := newSyncer(nft, []string{"127.0.0.1"})
	if err := s.apply(ctx, w.updates(&cfg)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % benchServices
		full := w.slices[k]
		sl := full
		if (i/benchServices)%2 == 0 {
			sl = full.DeepCopy()
			sl.Endpoints = sl.Endpoints[:benchEndpoints-1]
		}
		svc := w.services[k]
		r := buildService(&cfg, svc, []*discoveryv1.EndpointSlice{sl})
		if err := s.apply(ctx, map[types.NamespacedName]*serviceRules{{Namespace: svc.Namespace, Name: svc.Name}: r}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOneEndpointChange/generate: rules and transaction only.
// BenchmarkOneEndpointChange/kernel: the same applied by nft (root only).
func BenchmarkOneEndpointChange(b *testing.B) {
	b.Run("generate", func(b *testing.B) {
		benchOneEndpointChange(b, discardNFT{knftables.NewFake(knftables.IPv4Family, "skiff")})
	})
	b.Run("kernel", func(b *testing.B) {
		requireKernel(b)
		table := "skiffbench" + randomSuffix()
		b.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "ip", table).Run() })
		nft, err := knftables.New(knftables.IPv4Family, table)
		if err != nil {
			b.Fatal(err)
		}
		benchOneEndpointChange(b, nft)
	})
}

// BenchmarkFullSync programs 1,000 services x 10 endpoints from nothing:
// the first sync of a proxy (and the one after a failure).
func BenchmarkFullSync(b *testing.B) {
	ctx := context.Background()
	cfg := testRuleConfig
	w := bigWorld(benchServices, benchEndpoints)
	b.Run("generate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := newSyncer(discardNFT{knftables.NewFake(knftables.IPv4Family, "skiff")}, []string{"127.0.0.1"})
			if err := s.apply(ctx, w.updates(&cfg)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kernel", func(b *testing.B) {
		requireKernel(b)
		table := "skiffbench" + randomSuffix()
		b.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "ip", table).Run() })
		nft, err := knftables.New(knftables.IPv4Family, table)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			s := newSyncer(nft, []string{"127.0.0.1"})
			if err := s.apply(ctx, w.updates(&cfg)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := s.deleteTable(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
