package storagetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/storage"
)

func testCreateGet(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	ctx := testContext(t)

	before := currentRV(t, s)
	in := NewConfigMap("a", map[string]string{"app": "web"}, map[string]string{"k": "v"})
	in.ResourceVersion = "12345" // ignored: a stored object never carries its own RV
	out := create(t, s, cfg, in)
	rv, err := strconv.ParseInt(out.ResourceVersion, 10, 64)
	if err != nil || rv <= before {
		t.Fatalf("created resourceVersion %q, want a number > %d", out.ResourceVersion, before)
	}
	if out.Kind != "ConfigMap" || out.APIVersion != "v1" {
		t.Errorf("created TypeMeta = %+v, want v1 ConfigMap", out.TypeMeta)
	}
	if diff := cmp.Diff(map[string]string{"k": "v"}, out.Data); diff != "" {
		t.Errorf("created data (-want +got):\n%s", diff)
	}

	// "0" may be served by a cache that has not seen the create yet.
	eventually(t, "a get at resourceVersion 0 to find the object", func() bool {
		return s.Get(ctx, key(cfg, "a"), "0", &corev1.ConfigMap{}) == nil
	})
	for _, rv := range []string{"", "0", out.ResourceVersion} {
		got := &corev1.ConfigMap{}
		if err := s.Get(ctx, key(cfg, "a"), rv, got); err != nil {
			t.Fatalf("get at %q: %v", rv, err)
		}
		if diff := cmp.Diff(out, got); diff != "" {
			t.Errorf("get at %q (-created +got):\n%s", rv, diff)
		}
	}

	err = s.Create(ctx, key(cfg, "a"), NewConfigMap("a", nil, nil), &corev1.ConfigMap{}, 0)
	wantErr(t, "second create", err, storage.ErrAlreadyExists)
	err = s.Get(ctx, key(cfg, "missing"), "", &corev1.ConfigMap{})
	wantErr(t, "get missing", err, storage.ErrNotFound)
	err = s.Get(ctx, key(cfg, "a"), strconv.FormatInt(rv+1_000_000, 10), &corev1.ConfigMap{})
	if err == nil {
		t.Errorf("get at a future resourceVersion: no error")
	}
}

func testCreateTTL(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	ctx := testContext(t)
	for _, name := range []string{"e1", "e2"} {
		if err := s.Create(ctx, key(cfg, name), NewConfigMap(name, nil, nil), &corev1.ConfigMap{}, 1); err != nil {
			t.Fatalf("create %s with ttl: %v", name, err)
		}
	}
	if err := s.Get(ctx, key(cfg, "e1"), "", &corev1.ConfigMap{}); err != nil {
		t.Fatalf("get right after create: %v", err)
	}
	eventually(t, "objects with a ttl to expire", func() bool {
		for _, name := range []string{"e1", "e2"} {
			if err := s.Get(ctx, key(cfg, name), "", &corev1.ConfigMap{}); !errors.Is(err, storage.ErrNotFound) {
				return false
			}
		}
		return true
	})
}

func testGuaranteedUpdate(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	ctx := testContext(t)
	orig := create(t, s, cfg, NewConfigMap("a", nil, map[string]string{"n": "0"}))

	updated := update(t, s, cfg, "a", func(cm *corev1.ConfigMap) { cm.Data["n"] = "1" })
	if updated.ResourceVersion == orig.ResourceVersion || updated.Data["n"] != "1" {
		t.Fatalf("update: got rv %s data %v, want new rv and n=1", updated.ResourceVersion, updated.Data)
	}

	// No change: no write, out is the stored object.
	same := update(t, s, cfg, "a", func(cm *corev1.ConfigMap) {})
	if same.ResourceVersion != updated.ResourceVersion {
		t.Errorf("no-op update changed resourceVersion %s -> %s", updated.ResourceVersion, same.ResourceVersion)
	}

	ptr := func(s string) *string { return &s }
	noop := func(cur runtime.Object) (runtime.Object, error) { return cur, nil }
	errBoom := errors.New("boom")
	cases := []struct {
		name           string
		key            string
		ignoreNotFound bool
		pre            *storage.Preconditions
		fn             storage.UpdateFunc
		want           error
	}{
		{name: "missing", key: key(cfg, "missing"), fn: noop, want: storage.ErrNotFound},
		{name: "uid mismatch", key: key(cfg, "a"), pre: &storage.Preconditions{UID: ptr("other")}, fn: noop, want: storage.ErrConflict},
		{name: "stale resourceVersion", key: key(cfg, "a"), pre: &storage.Preconditions{ResourceVersion: ptr(orig.ResourceVersion)}, fn: noop, want: storage.ErrConflict},
		{name: "update func error", key: key(cfg, "a"), fn: func(runtime.Object) (runtime.Object, error) { return nil, errBoom }, want: errBoom},
		{name: "matching preconditions", key: key(cfg, "a"), pre: &storage.Preconditions{UID: ptr("uid-a"), ResourceVersion: ptr(updated.ResourceVersion)}, fn: noop},
		{name: "create on update", key: key(cfg, "b"), ignoreNotFound: true, fn: func(cur runtime.Object) (runtime.Object, error) {
			if cm := cur.(*corev1.ConfigMap); cm.Name != "" {
				return nil, errors.New("expected a zero object")
			}
			return NewConfigMap("b", nil, nil), nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.GuaranteedUpdate(ctx, tc.key, &corev1.ConfigMap{}, tc.ignoreNotFound, tc.pre, tc.fn)
			if tc.want == nil && err != nil {
				t.Fatalf("got error %v", err)
			}
			if tc.want != nil {
				wantErr(t, tc.name, err, tc.want)
			}
		})
	}
	got := &corev1.ConfigMap{}
	if err := s.Get(ctx, key(cfg, "b"), "", got); err != nil || got.Name != "b" {
		t.Fatalf("get object created on update: %v %q", err, got.Name)
	}
}

func testGuaranteedUpdateConcurrent(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	ctx := testContext(t)
	create(t, s, cfg, NewConfigMap("counter", nil, map[string]string{"n": "0"}))
	const writers, each = 4, 5
	var (
		wg sync.WaitGroup
	)
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- s.GuaranteedUpdate(ctx, key(cfg, "counter"), &corev1.ConfigMap{}, false, nil,
					func(cur runtime.Object) (runtime.Object, error) {
						cm := cur.(*corev1.ConfigMap)
						n, _ := strconv.Atoi(cm.Data["n"])
						cm.Data["n"] = strconv.Itoa(n + 1)
						return cm, nil
					})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent update: %v", err)
		}
	}
	got := &corev1.ConfigMap{}
	if err := s.Get(ctx, key(cfg, "counter"), "", got); err != nil {
		t.Fatal(err)
	}
	if got.Data["n"] != strconv.Itoa(writers*each) {
		t.Errorf("counter = %s after %d increments: a racing write was lost", got.Data["n"], writers*each)
	}
}

func testDelete(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	ctx := testContext(t)
	stored := create(t, s, cfg, NewConfigMap("a", nil, map[string]string{"k": "v"}))
	ptr := func(s string) *string { return &s }
	errCheck := errors.New("in use")

	err := s.Delete(ctx, key(cfg, "a"), &corev1.ConfigMap{}, &storage.Preconditions{UID: ptr("other")}, nil)
	wantErr(t, "delete with wrong uid", err, storage.ErrConflict)
	err = s.Delete(ctx, key(cfg, "a"), &corev1.ConfigMap{}, &storage.Preconditions{ResourceVersion: ptr("1")}, nil)
	wantErr(t, "delete with stale resourceVersion", err, storage.ErrConflict)
	err = s.Delete(ctx, key(cfg, "a"), &corev1.ConfigMap{}, nil, func(runtime.Object) error { return errCheck })
	wantErr(t, "delete refused by check", err, errCheck)

	out := &corev1.ConfigMap{}
	err = s.Delete(ctx, key(cfg, "a"), out, &storage.Preconditions{UID: ptr("uid-a"), ResourceVersion: ptr(stored.ResourceVersion)},
		func(cur runtime.Object) error {
			if cur.(*corev1.ConfigMap).Data["k"] != "v" {
				return errors.New("check saw the wrong object")
			}
			return nil
		})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if diff := cmp.Diff(stored, out); diff != "" {
		t.Errorf("deleted object (-stored +out):\n%s", diff)
	}
	wantErr(t, "get deleted", s.Get(ctx, key(cfg, "a"), "", &corev1.ConfigMap{}), storage.ErrNotFound)
	wantErr(t, "delete again", s.Delete(ctx, key(cfg, "a"), &corev1.ConfigMap{}, nil, nil), storage.ErrNotFound)
}
