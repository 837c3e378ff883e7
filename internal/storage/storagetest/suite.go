package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/storage"
)

// Compacter is implemented by stores (or test wrappers around them) that
// can compact the etcd they sit on; the tests of ErrExpired need it and
// are skipped without it.
type Compacter interface {
	Compact(ctx context.Context, rev int64) error
}

// NewStoreFunc returns the Interface under test for a resource; it must
// be ready to serve when it returns, and be cleaned up with t.
type NewStoreFunc func(t *testing.T, cfg storage.Config) storage.Interface

var prefixSeq atomic.Int64

// ConfigMapConfig returns a storage.Config for ConfigMaps under a prefix
// no other test uses.
func ConfigMapConfig() storage.Config {
	return storage.Config{
		Prefix:           fmt.Sprintf("/registry/configmaps-%d-%d/", time.Now().UnixNano()%1e6, prefixSeq.Add(1)),
		GVK:              corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		NewFunc:          func() runtime.Object { return &corev1.ConfigMap{} },
		NewListFunc:      func() runtime.Object { return &corev1.ConfigMapList{} },
		BookmarkInterval: 100 * time.Millisecond,
	}
}

// GetAttrs is the test resource's attribute function: its labels, and
// metadata.name and metadata.namespace as fields.
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil, nil, fmt.Errorf("not a ConfigMap: %T", obj)
	}
	return labels.Set(cm.Labels), fields.Set{"metadata.name": cm.Name, "metadata.namespace": cm.Namespace}, nil
}

// LabelPredicate selects by a label selector string ("app=web").
func LabelPredicate(t testing.TB, sel string) storage.Predicate {
	t.Helper()
	s, err := labels.Parse(sel)
	if err != nil {
		t.Fatalf("parse selector %q: %v", sel, err)
	}
	return storage.Predicate{Label: s, GetAttrs: GetAttrs}
}

// NewConfigMap returns a ConfigMap in namespace "ns".
func NewConfigMap(name string, lbls map[string]string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: lbls, UID: types.UID("uid-" + name)},
		Data:       data,
	}
}

// RunTests runs the conformance suite against the Interface newStore
// returns. Every subtest gets its own resource prefix.
func RunTests(t *testing.T, newStore NewStoreFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore NewStoreFunc)
	}{
		{"CreateGet", testCreateGet},
		{"CreateTTL", testCreateTTL},
		{"GuaranteedUpdate", testGuaranteedUpdate},
		{"GuaranteedUpdateConcurrent", testGuaranteedUpdateConcurrent},
		{"Delete", testDelete},
		{"ListSelectors", testListSelectors},
		{"ListPagination", testListPagination},
		{"ListResourceVersion", testListResourceVersion},
		{"ListExpired", testListExpired},
		{"WatchFromResourceVersion", testWatchFromResourceVersion},
		{"WatchInitialState", testWatchInitialState},
		{"WatchExpired", testWatchExpired},
		{"WatchPredicateTransitions", testWatchPredicateTransitions},
		{"WatchSingleKey", testWatchSingleKey},
		{"WatchBookmarks", testWatchBookmarks},
		{"WatchSendInitialEvents", testWatchSendInitialEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// create stores cm at its key and returns the stored object.
func create(t *testing.T, s storage.Interface, cfg storage.Config, cm *corev1.ConfigMap) *corev1.ConfigMap {
	t.Helper()
	out := &corev1.ConfigMap{}
	if err := s.Create(testContext(t), key(cfg, cm.Name), cm, out, 0); err != nil {
		t.Fatalf("create %s: %v", cm.Name, err)
	}
	return out
}

func key(cfg storage.Config, name string) string { return storage.Key(cfg.Prefix, "ns", name) }

// update sets data on the object at name and returns the stored result.
func update(t *testing.T, s storage.Interface, cfg storage.Config, name string, fn func(cm *corev1.ConfigMap)) *corev1.ConfigMap {
	t.Helper()
	out := &corev1.ConfigMap{}
	err := s.GuaranteedUpdate(testContext(t), key(cfg, name), out, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		cm := cur.(*corev1.ConfigMap)
		// Empty maps do not survive protobuf: give fn maps to write to.
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		fn(cm)
		return cm, nil
	})
	if err != nil {
		t.Fatalf("update %s: %v", name, err)
	}
	return out
}

func deleteObj(t *testing.T, s storage.Interface, cfg storage.Config, name string) *corev1.ConfigMap {
	t.Helper()
	out := &corev1.ConfigMap{}
	if err := s.Delete(testContext(t), key(cfg, name), out, nil, nil); err != nil {
		t.Fatalf("delete %s: %v", name, err)
	}
	return out
}

func currentRV(t *testing.T, s storage.Interface) int64 {
	t.Helper()
	rv, err := s.CurrentResourceVersion(testContext(t))
	if err != nil {
		t.Fatalf("current resource version: %v", err)
	}
	return int64(rv)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
