package encryption_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/encryption"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

// secrets is the resource the generated configuration encrypts; the tests
// hand its transformer to the ConfigMaps the conformance suite stores (a
// transformer sees bytes, not types).
var secrets = schema.GroupResource{Resource: "secrets"}

// generated returns a Dynamic that encrypts secrets with one fresh key,
// and its configuration.
func generated(t testing.TB, provider string) (*encryption.Dynamic, *encryption.Configuration) {
	t.Helper()
	c, err := encryption.Generate(provider, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return encryption.NewDynamic(mustSet(t, c)), c
}

func mustSet(t testing.TB, c *encryption.Configuration) *encryption.Set {
	t.Helper()
	if err := c.Validate().ToAggregate(); err != nil {
		t.Fatal(err)
	}
	s, err := encryption.NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStorageConformanceEncrypted runs the storage conformance suite on a
// Store and a Cacher whose values are encrypted: gets, lists, watches
// (whose events carry the stored bytes) and updates all see plain
// objects.
func TestStorageConformanceEncrypted(t *testing.T) {
	client := storagetest.StartEtcd(t)
	d, _ := generated(t, encryption.Secretbox)
	t.Run("store", func(t *testing.T) {
		storagetest.RunTests(t, func(t *testing.T, cfg storage.Config) storage.Interface {
			cfg.Transformer = d.For(secrets)
			return storagetest.WithCompaction(storage.NewStore(client, cfg), client)
		})
	})
	t.Run("cacher", func(t *testing.T) {
		storagetest.RunTests(t, func(t *testing.T, cfg storage.Config) storage.Interface {
			cfg.Transformer = d.For(secrets)
			return storagetest.WithCompaction(startCacher(t, client, cfg), client)
		})
	})
}

func startCacher(t testing.TB, client *clientv3.Client, cfg storage.Config) *storage.Cacher {
	t.Helper()
	c := storage.NewCacher(storage.NewStore(client, cfg), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cacher Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("cacher for %s not ready after 10s", cfg.Prefix)
	}
	return c
}

func rawValue(t testing.TB, client *clientv3.Client, key string) []byte {
	t.Helper()
	resp, err := client.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd get %s: %v (%d kvs)", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

// TestRotateThroughNoOpUpdate: after a new key goes first, an update that
// changes nothing still rewrites a value stored under the old key (it is
// stale), and one already under the new key is left alone; a watch sees
// the plain object throughout.
func TestRotateThroughNoOpUpdate(t *testing.T) {
	client := storagetest.StartEtcd(t)
	d, c := generated(t, encryption.AESCBC)
	cfg := storagetest.ConfigMapConfig()
	cfg.Transformer = d.For(secrets)
	s := startCacher(t, client, cfg)
	ctx := context.Background()
	const value = "plain-value-7f3a9c"
	key := storage.Key(cfg.Prefix, "ns", "cm")
	out := &corev1.ConfigMap{}
	if err := s.Create(ctx, key, storagetest.NewConfigMap("cm", nil, map[string]string{"v": value}), out, 0); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, cfg.Prefix, storage.ListOptions{ResourceVersion: out.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	oldKey := mustSet(t, c).For(secrets).Active()
	raw := rawValue(t, client, key)
	if !bytes.HasPrefix(raw, []byte("k8s:enc:aescbc:v1:")) || bytes.Contains(raw, []byte(value)) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte(value)))) {
		t.Fatalf("stored value %q is not encrypted", raw[:min(40, len(raw))])
	}

	rotated, newName, err := c.WithNewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.Store(mustSet(t, rotated))
	noop := func(cur runtime.Object) (runtime.Object, error) { return cur, nil }
	if err := s.GuaranteedUpdate(ctx, key, &corev1.ConfigMap{}, false, nil, noop); err != nil {
		t.Fatal(err)
	}
	raw = rawValue(t, client, key)
	if want := "k8s:enc:aescbc:v1:" + newName + ":"; !bytes.HasPrefix(raw, []byte(want)) {
		t.Fatalf("after a no-op update the value starts %q, want %q (old key %s)", raw[:min(40, len(raw))], want, oldKey)
	}
	rev := mustRev(t, client, key)
	if err := s.GuaranteedUpdate(ctx, key, &corev1.ConfigMap{}, false, nil, noop); err != nil {
		t.Fatal(err)
	}
	if got := mustRev(t, client, key); got != rev {
		t.Fatalf("a no-op update of a value under the active key wrote (revision %d, then %d)", rev, got)
	}

	// Drop the old key: the value still reads, from etcd and the cache.
	only, _, err := rotated.WithActiveKeyOnly()
	if err != nil {
		t.Fatal(err)
	}
	d.Store(mustSet(t, only))
	for _, rv := range []string{"", "0"} {
		got := &corev1.ConfigMap{}
		if err := s.Get(ctx, key, rv, got); err != nil || got.Data["v"] != value {
			t.Fatalf("get (rv %q): %v, data %v", rv, err, got.Data)
		}
	}
	select {
	case ev := <-w.ResultChan():
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Modified || !ok || cm.Data["v"] != value {
			t.Fatalf("watch event %s %T %v", ev.Type, ev.Object, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event for the rewrite")
	}
}

func mustRev(t testing.TB, client *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := client.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	return resp.Kvs[0].ModRevision
}

// BenchmarkSecretStorage measures Create and a LIST from etcd (the path
// that decrypts every item: a list with resourceVersion "" skips the watch
// cache) of Secrets of 1 KiB, with and without encryption.
func BenchmarkSecretStorage(b *testing.B) {
	client := storagetest.StartEtcd(b)
	cfgFor := func(name string) storage.Config {
		return storage.Config{
			Prefix:      "/registry/" + name + "/",
			GVK:         corev1.SchemeGroupVersion.WithKind("Secret"),
			NewFunc:     func() runtime.Object { return &corev1.Secret{} },
			NewListFunc: func() runtime.Object { return &corev1.SecretList{} },
		}
	}
	for _, provider := range []string{"none", encryption.AESCBC, encryption.Secretbox, encryption.AESGCM} {
		cfg := cfgFor("secrets-" + provider)
		if provider != "none" {
			c := &encryption.Configuration{Kind: encryption.Kind, APIVersion: encryption.APIVersion, Resources: []encryption.ResourceConfiguration{{
				Resources: []string{"secrets"},
				Providers: []encryption.ProviderConfiguration{providerConfig(provider)},
			}}}
			cfg.Transformer = encryption.NewDynamic(mustSet(b, c)).For(schema.GroupResource{Resource: "secrets"})
		}
		s := storage.NewStore(client, cfg)
		ctx := context.Background()
		n := 0
		b.Run("create/"+provider, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n++
				sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", n), Namespace: "ns"}, Data: map[string][]byte{"v": bytes.Repeat([]byte{'x'}, 1024)}}
				if err := s.Create(ctx, storage.Key(cfg.Prefix, "ns", sec.Name), sec, &corev1.Secret{}, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		for n < 500 {
			n++
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", n), Namespace: "ns"}, Data: map[string][]byte{"v": bytes.Repeat([]byte{'x'}, 1024)}}
			if err := s.Create(ctx, storage.Key(cfg.Prefix, "ns", sec.Name), sec, nil, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("list500/"+provider, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				list := &corev1.SecretList{}
				if err := s.List(ctx, cfg.Prefix, storage.ListOptions{Limit: 500}, list); err != nil {
					b.Fatal(err)
				}
				if len(list.Items) != 500 {
					b.Fatalf("listed %d", len(list.Items))
				}
			}
		})
	}
}

func providerConfig(provider string) encryption.ProviderConfiguration {
	kc := &encryption.KeysConfiguration{Keys: []encryption.Key{{Name: "k", Secret: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))}}}
	switch provider {
	case encryption.AESCBC:
		return encryption.ProviderConfiguration{AESCBC: kc}
	case encryption.AESGCM:
		return encryption.ProviderConfiguration{AESGCM: kc}
	}
	return encryption.ProviderConfiguration{Secretbox: kc}
}
