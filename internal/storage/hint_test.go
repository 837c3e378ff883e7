package storage_test

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

// An update that starts from a stale cached object must act on what is
// stored, whatever the update function does with the stale copy.
func TestGuaranteedUpdateStaleHint(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	s := storage.NewStore(client, cfg)
	ctx := context.Background()
	key := storage.Key(cfg.Prefix, "ns", "a")
	stale := &corev1.ConfigMap{}
	if err := s.Create(ctx, key, storagetest.NewConfigMap("a", nil, map[string]string{"k": "1"}), stale, 0); err != nil {
		t.Fatal(err)
	}
	set := func(v string) func(runtimeObject) (runtimeObject, error) {
		return func(cur runtimeObject) (runtimeObject, error) {
			cm := cur.(*corev1.ConfigMap)
			cm.Data = map[string]string{"k": v}
			return cm, nil
		}
	}
	if err := s.GuaranteedUpdate(ctx, key, &corev1.ConfigMap{}, false, nil, set("2")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func(runtimeObject) (runtimeObject, error)
		want string
	}{
		{name: "append", want: "2x", fn: func(cur runtimeObject) (runtimeObject, error) {
			cm := cur.(*corev1.ConfigMap)
			cm.Data["k"] += "x"
			return cm, nil
		}},
		{name: "fails on stale", want: "2xy", fn: func(cur runtimeObject) (runtimeObject, error) {
			cm := cur.(*corev1.ConfigMap)
			if cm.Data["k"] == "1" {
				return nil, errors.New("stale")
			}
			cm.Data["k"] += "y"
			return cm, nil
		}},
		{name: "no-op on stale", want: "2xy", fn: func(cur runtimeObject) (runtimeObject, error) { return cur, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &corev1.ConfigMap{}
			if err := storage.GuaranteedUpdateFrom(s, ctx, key, out, false, nil, tt.fn, stale.DeepCopy()); err != nil {
				t.Fatal(err)
			}
			if out.Data["k"] != tt.want {
				t.Fatalf("after update from a stale hint: %q, want %q", out.Data["k"], tt.want)
			}
		})
	}
}
