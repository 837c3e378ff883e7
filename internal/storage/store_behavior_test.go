package storage_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

func TestStoreSharesLeases(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	s := storage.NewStore(client, cfg)
	ctx := context.Background()
	leaseOf := func(name string, ttl int64) int64 {
		t.Helper()
		key := storage.Key(cfg.Prefix, "ns", name)
		if err := s.Create(ctx, key, storagetest.NewConfigMap(name, nil, nil), &corev1.ConfigMap{}, ttl); err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v", key, err)
		}
		return resp.Kvs[0].Lease
	}
	a, b, other := leaseOf("a", 600), leaseOf("b", 600), leaseOf("c", 1200)
	if a == 0 || a != b {
		t.Errorf("objects with the same ttl got leases %d and %d, want one shared lease", a, b)
	}
	if other == a {
		t.Errorf("objects with different ttls share lease %d", a)
	}
	// An update keeps the lease.
	err := s.GuaranteedUpdate(ctx, storage.Key(cfg.Prefix, "ns", "a"), &corev1.ConfigMap{}, false, nil, func(cur runtimeObject) (runtimeObject, error) {
		cm := cur.(*corev1.ConfigMap)
		cm.Data = map[string]string{"k": "v"}
		return cm, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(ctx, storage.Key(cfg.Prefix, "ns", "a"))
	if err != nil || resp.Kvs[0].Lease != a {
		t.Errorf("lease after update = %v (%v), want %d", resp.Kvs[0].Lease, err, a)
	}
}

func TestStoreMetrics(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	s := storage.NewStore(client, cfg)
	if err := s.Create(context.Background(), storage.Key(cfg.Prefix, "ns", "a"), storagetest.NewConfigMap("a", nil, nil), nil, 0); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	for _, c := range storage.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "skiff_etcd_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == "create" && labels["type"] == cfg.Prefix && m.GetHistogram().GetSampleCount() == 1 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no create sample for %s in skiff_etcd_request_duration_seconds", cfg.Prefix)
	}
}

func TestRunCompactor(t *testing.T) {
	client := storagetest.StartEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	// Two API servers share the etcd.
	for i := 0; i < 2; i++ {
		go func() {
			storage.RunCompactor(ctx, client, 100*time.Millisecond)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	var first int64
	for i := 0; i < 5; i++ {
		resp, err := client.Put(ctx, "k", strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if first == 0 {
			first = resp.Header.Revision
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client.Get(ctx, "k", clientv3WithRev(first))
		if errors.Is(err, rpctypes.ErrCompacted) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d not compacted after 10s (last error %v)", first, err)
		}
		// Writes keep the revision moving, as a live cluster's do.
		if _, err := client.Put(ctx, "tick", "x"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := client.Get(ctx, storage.CompactRevKey)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Version < 2 {
		t.Errorf("%s after compaction: %v %v, want version >= 2", storage.CompactRevKey, resp, err)
	}
}
