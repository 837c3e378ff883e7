package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

// TestCacherFillPages fills a cache in many small pages decoded
// concurrently and checks that it holds what etcd holds, in order.
func TestCacherFillPages(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	store := storage.NewStore(client, cfg)
	ctx := context.Background()
	const n = 103
	for i := range n {
		cm := storagetest.NewConfigMap(fmt.Sprintf("cm-%03d", (i*37)%n), nil, map[string]string{"i": fmt.Sprint(i)})
		if err := store.Create(ctx, storage.Key(cfg.Prefix, "ns", cm.Name), cm, &corev1.ConfigMap{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A few updated objects, so that their revisions differ from their
	// creation order.
	for _, name := range []string{"cm-000", "cm-050", "cm-102"} {
		err := store.GuaranteedUpdate(ctx, storage.Key(cfg.Prefix, "ns", name), &corev1.ConfigMap{}, false, nil,
			func(in runtimeObject) (runtimeObject, error) {
				cm := in.(*corev1.ConfigMap).DeepCopy()
				cm.Data["updated"] = "yes"
				return cm, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Cleanup(storage.SetFill(10, 3))
	c := startCacher(t, client, cfg, nil)

	var fromEtcd, fromCache corev1.ConfigMapList
	if err := store.List(ctx, cfg.Prefix, storage.ListOptions{}, &fromEtcd); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, cfg.Prefix, storage.ListOptions{ResourceVersion: "0"}, &fromCache); err != nil {
		t.Fatal(err)
	}
	if len(fromEtcd.Items) != n {
		t.Fatalf("etcd holds %d objects, want %d", len(fromEtcd.Items), n)
	}
	if diff := cmp.Diff(fromEtcd.Items, fromCache.Items); diff != "" {
		t.Errorf("cache filled in pages differs from etcd (-etcd +cache):\n%s", diff)
	}
	if err := c.ReadinessCheck(); err != nil {
		t.Errorf("ReadinessCheck of a filled cache: %v", err)
	}
}

// blockingTransformer stores values as they are and, until release is
// closed, holds up reading back any value that contains marker.
type blockingTransformer struct {
	marker  []byte
	release chan struct{}
	once    sync.Once
	entered chan struct{} // closed when a read first blocks
}

func (b *blockingTransformer) TransformToStorage(data []byte) ([]byte, error) { return data, nil }

func (b *blockingTransformer) TransformFromStorage(data []byte) ([]byte, bool, error) {
	if bytes.Contains(data, b.marker) {
		b.once.Do(func() { close(b.entered) })
		<-b.release
	}
	return data, false, nil
}

// TestCacherReadinessWhileFilling checks which caches hold up readiness
// while their first list is decoded: one that fits a page does, one of
// several pages does not, and reads of it go to etcd meanwhile.
func TestCacherReadinessWhileFilling(t *testing.T) {
	client := storagetest.StartEtcd(t)
	t.Cleanup(storage.SetFill(10, 2))
	for _, tc := range []struct {
		name    string
		objects int
		holds   bool
	}{
		{"one page", 8, true},
		{"several pages", 45, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tr := &blockingTransformer{marker: []byte("block-me"), release: make(chan struct{}), entered: make(chan struct{})}
			released := false
			release := func() {
				if !released {
					released = true
					close(tr.release)
				}
			}
			defer release()
			cfg := storagetest.ConfigMapConfig()
			cfg.Transformer = tr
			store := storage.NewStore(client, cfg)
			for i := range tc.objects {
				data := map[string]string{"v": "plain"}
				if i == 0 {
					data["v"] = "block-me" // in the first page
				}
				cm := storagetest.NewConfigMap(fmt.Sprintf("cm-%03d", i), nil, data)
				if err := store.Create(ctx, storage.Key(cfg.Prefix, "ns", cm.Name), cm, &corev1.ConfigMap{}, 0); err != nil {
					t.Fatal(err)
				}
			}

			c := storage.NewCacher(store, cfg)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(runCtx) }()
			defer func() {
				release()
				cancel()
				if err := <-done; err != nil {
					t.Errorf("cacher Run: %v", err)
				}
			}()
			if err := c.ReadinessCheck(); err == nil && tc.holds {
				t.Errorf("ReadinessCheck before the first list: nil, want an error")
			}
			select {
			case <-tr.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the fill never decoded the first page")
			}
			if tc.holds {
				// The fill is blocked: nothing will change the answer.
				if err := c.ReadinessCheck(); err == nil {
					t.Errorf("ReadinessCheck while a one-page cache fills: nil, want an error")
				}
			} else {
				deadline := time.Now().Add(10 * time.Second)
				for c.ReadinessCheck() != nil {
					if time.Now().After(deadline) {
						t.Fatalf("ReadinessCheck of a several-page cache still failing while it fills: %v", c.ReadinessCheck())
					}
					time.Sleep(10 * time.Millisecond)
				}
				select {
				case <-c.Ready():
					t.Fatal("cache ready while its fill is blocked")
				default:
				}
				// Not filled: reads go to etcd.
				var got corev1.ConfigMap
				if err := c.Get(ctx, storage.Key(cfg.Prefix, "ns", "cm-007"), "0", &got); err != nil {
					t.Fatalf("Get while filling: %v", err)
				}
				if got.Name != "cm-007" || got.Data["v"] != "plain" {
					t.Errorf("Get while filling = %s %v, want cm-007 plain", got.Name, got.Data)
				}
			}
			release()
			select {
			case <-c.Ready():
			case <-time.After(10 * time.Second):
				t.Fatal("cache not ready after the fill was released")
			}
			if err := c.ReadinessCheck(); err != nil {
				t.Errorf("ReadinessCheck once filled: %v", err)
			}
			var l corev1.ConfigMapList
			if err := c.List(ctx, cfg.Prefix, storage.ListOptions{ResourceVersion: "0"}, &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != tc.objects {
				t.Errorf("cache holds %d objects, want %d", len(l.Items), tc.objects)
			}
		})
	}
}
