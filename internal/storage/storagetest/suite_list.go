package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-io/skiff/internal/storage"
)

func names(list *corev1.ConfigMapList) []string {
	out := []string{}
	for _, cm := range list.Items {
		out = append(out, cm.Name)
	}
	return out
}

func list(t *testing.T, s storage.Interface, cfg storage.Config, opts storage.ListOptions) *corev1.ConfigMapList {
	t.Helper()
	out := &corev1.ConfigMapList{}
	if err := s.List(testContext(t), cfg.Prefix, opts, out); err != nil {
		t.Fatalf("list %+v: %v", opts, err)
	}
	return out
}

func testListSelectors(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	create(t, s, cfg, NewConfigMap("a", map[string]string{"app": "web"}, nil))
	create(t, s, cfg, NewConfigMap("b", map[string]string{"app": "db"}, nil))
	last := create(t, s, cfg, NewConfigMap("c", map[string]string{"app": "web", "tier": "front"}, nil))
	web, _ := labels.Parse("app=web")
	cases := []struct {
		name string
		pred storage.Predicate
		want []string
	}{
		{"everything", storage.Predicate{}, []string{"a", "b", "c"}},
		{"label", storage.Predicate{Label: web, GetAttrs: GetAttrs}, []string{"a", "c"}},
		{"label exists", LabelPredicate(t, "tier"), []string{"c"}},
		{"field", storage.Predicate{Field: fields.OneTermEqualSelector("metadata.name", "b"), GetAttrs: GetAttrs}, []string{"b"}},
		{"label and field", storage.Predicate{Label: web, Field: fields.OneTermEqualSelector("metadata.name", "b"), GetAttrs: GetAttrs}, []string{}},
	}
	for _, tc := range cases {
		for _, rv := range []string{"", "0", last.ResourceVersion} {
			t.Run(tc.name+"/rv="+rv, func(t *testing.T) {
				got := list(t, s, cfg, storage.ListOptions{ResourceVersion: rv, Predicate: tc.pred})
				if diff := cmp.Diff(tc.want, names(got)); diff != "" {
					t.Errorf("names (-want +got):\n%s", diff)
				}
				if n, _ := strconv.ParseInt(got.ResourceVersion, 10, 64); n < mustRV(t, last.ResourceVersion) {
					t.Errorf("list resourceVersion %q is older than the last write %s", got.ResourceVersion, last.ResourceVersion)
				}
			})
		}
	}
	// A namespace is a sub-prefix.
	other := NewConfigMap("z", nil, nil)
	other.Namespace = "other"
	if err := s.Create(testContext(t), storage.Key(cfg.Prefix, "other", "z"), other, &corev1.ConfigMap{}, 0); err != nil {
		t.Fatal(err)
	}
	got := &corev1.ConfigMapList{}
	if err := s.List(testContext(t), cfg.Prefix+"ns/", storage.ListOptions{}, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, names(got)); diff != "" {
		t.Errorf("namespace list (-want +got):\n%s", diff)
	}
}

func mustRV(t *testing.T, rv string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", rv, err)
	}
	return n
}

func testListPagination(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	const total = 500
	var want []string
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("obj-%03d", i)
				cm := NewConfigMap(name, map[string]string{"mod3": strconv.Itoa(i % 3)}, nil)
				if err := s.Create(testContext(t), key(cfg, name), cm, &corev1.ConfigMap{}, 0); err != nil {
					t.Errorf("create %s: %v", name, err)
				}
			}
		}()
	}
	for i := 0; i < total; i++ {
		want = append(want, fmt.Sprintf("obj-%03d", i))
		work <- i
	}
	close(work)
	wg.Wait()

	// Unfiltered pages of 100, read at the first page's revision even
	// though the resource changes between pages.
	var got []string
	opts := storage.ListOptions{Limit: 100}
	var firstRV string
	for page := 0; ; page++ {
		l := list(t, s, cfg, opts)
		got = append(got, names(l)...)
		if page == 0 {
			firstRV = l.ResourceVersion
			if l.RemainingItemCount == nil || *l.RemainingItemCount != total-100 {
				t.Errorf("first page remainingItemCount = %v, want %d", l.RemainingItemCount, total-100)
			}
			create(t, s, cfg, NewConfigMap("obj-999", nil, nil))
			deleteObj(t, s, cfg, "obj-499")
		} else if l.ResourceVersion != firstRV {
			t.Errorf("page %d at resourceVersion %s, want the first page's %s", page, l.ResourceVersion, firstRV)
		}
		if len(l.Items) > 100 {
			t.Fatalf("page %d has %d items, limit 100", page, len(l.Items))
		}
		if l.Continue == "" {
			if l.RemainingItemCount != nil {
				t.Errorf("last page has remainingItemCount %d", *l.RemainingItemCount)
			}
			break
		}
		if page > total/100 {
			t.Fatalf("more pages than expected")
		}
		opts = storage.ListOptions{Limit: 100, Continue: l.Continue}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paginated names (-want +got):\n%s", diff)
	}

	// Filtered pages: each at most 7 matching items, all of them in order.
	var wantMod0, gotMod0 []string
	for i := 0; i < total-1; i += 3 {
		wantMod0 = append(wantMod0, fmt.Sprintf("obj-%03d", i))
	}
	opts = storage.ListOptions{Limit: 7, Predicate: LabelPredicate(t, "mod3=0")}
	for pages := 0; ; pages++ {
		l := list(t, s, cfg, opts)
		if len(l.Items) > 7 {
			t.Fatalf("filtered page has %d items, limit 7", len(l.Items))
		}
		if l.Continue != "" && len(l.Items) != 7 {
			t.Errorf("filtered page with a continue token has %d items, want 7", len(l.Items))
		}
		gotMod0 = append(gotMod0, names(l)...)
		if l.Continue == "" {
			break
		}
		if pages > total {
			t.Fatalf("filtered pagination does not end")
		}
		opts.Continue = l.Continue
	}
	if diff := cmp.Diff(wantMod0, gotMod0); diff != "" {
		t.Errorf("filtered paginated names (-want +got):\n%s", diff)
	}

	err := s.List(testContext(t), cfg.Prefix, storage.ListOptions{Limit: 10, Continue: "not-a-token"}, &corev1.ConfigMapList{})
	wantErr(t, "list with a bad continue token", err, storage.ErrInvalidContinue)
}

func testListResourceVersion(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	a1 := create(t, s, cfg, NewConfigMap("a", nil, map[string]string{"v": "1"}))
	update(t, s, cfg, "a", func(cm *corev1.ConfigMap) { cm.Data["v"] = "2" })
	b := create(t, s, cfg, NewConfigMap("b", nil, nil))

	latest := list(t, s, cfg, storage.ListOptions{})
	if diff := cmp.Diff([]string{"a", "b"}, names(latest)); diff != "" {
		t.Fatalf("consistent list (-want +got):\n%s", diff)
	}
	if latest.Items[0].Data["v"] != "2" || mustRV(t, latest.ResourceVersion) < mustRV(t, b.ResourceVersion) {
		t.Errorf("consistent list did not see the latest writes: %+v at %s", latest.Items[0].Data, latest.ResourceVersion)
	}

	eventually(t, "resourceVersion=0 list to see both objects", func() bool {
		return len(list(t, s, cfg, storage.ListOptions{ResourceVersion: "0"}).Items) == 2
	})

	exact := list(t, s, cfg, storage.ListOptions{ResourceVersion: a1.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if diff := cmp.Diff([]string{"a"}, names(exact)); diff != "" || exact.Items[0].Data["v"] != "1" {
		t.Errorf("exact list at %s: names %v data %v, want [a] with v=1", a1.ResourceVersion, names(exact), exact.Items)
	}
	if exact.ResourceVersion != a1.ResourceVersion {
		t.Errorf("exact list resourceVersion %s, want %s", exact.ResourceVersion, a1.ResourceVersion)
	}

	legacy := list(t, s, cfg, storage.ListOptions{ResourceVersion: a1.ResourceVersion, Limit: 10})
	if diff := cmp.Diff([]string{"a"}, names(legacy)); diff != "" {
		t.Errorf("paginated list at %s reads exactly there (-want +got):\n%s", a1.ResourceVersion, diff)
	}

	notOlder := list(t, s, cfg, storage.ListOptions{ResourceVersion: b.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if len(notOlder.Items) != 2 || mustRV(t, notOlder.ResourceVersion) < mustRV(t, b.ResourceVersion) {
		t.Errorf("not-older-than list at %s: %v at %s", b.ResourceVersion, names(notOlder), notOlder.ResourceVersion)
	}

	future := strconv.FormatInt(mustRV(t, b.ResourceVersion)+1_000_000, 10)
	err := s.List(testContext(t), cfg.Prefix, storage.ListOptions{ResourceVersion: future}, &corev1.ConfigMapList{})
	wantErr(t, "list at a future resourceVersion", err, storage.ErrTimeout)

	err = s.List(testContext(t), cfg.Prefix, storage.ListOptions{ResourceVersion: "x"}, &corev1.ConfigMapList{})
	if err == nil {
		t.Errorf("list at resourceVersion x: no error")
	}
}

func testListExpired(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	c, ok := s.(Compacter)
	if !ok {
		t.Skip("store cannot compact")
	}
	for i := 0; i < 3; i++ {
		create(t, s, cfg, NewConfigMap(fmt.Sprintf("o%d", i), nil, nil))
	}
	first := list(t, s, cfg, storage.ListOptions{Limit: 1})
	if first.Continue == "" {
		t.Fatalf("no continue token on a first page of 1 of 3")
	}
	old := first.ResourceVersion
	create(t, s, cfg, NewConfigMap("z-later", nil, nil))
	if err := c.Compact(testContext(t), currentRV(t, s)); err != nil {
		t.Fatalf("compact: %v", err)
	}
	err := s.List(testContext(t), cfg.Prefix, storage.ListOptions{ResourceVersion: old, ResourceVersionMatch: metav1.ResourceVersionMatchExact}, &corev1.ConfigMapList{})
	wantErr(t, "exact list at a compacted revision", err, storage.ErrExpired)
	err = s.List(testContext(t), cfg.Prefix, storage.ListOptions{Limit: 1, Continue: first.Continue}, &corev1.ConfigMapList{})
	wantErr(t, "continue at a compacted revision", err, storage.ErrExpired)

	// The error offers a token that goes on from the same key at the
	// latest revision: an inconsistent rest, which now holds "z-later".
	var expired *storage.ExpiredContinueError
	if !errors.As(err, &expired) || expired.Continue == "" {
		t.Fatalf("continue at a compacted revision: %v, want an ExpiredContinueError with a token", err)
	}
	var names []string
	opts := storage.ListOptions{Limit: 2, Continue: expired.Continue}
	for {
		page := list(t, s, cfg, opts)
		if page.ResourceVersion == old {
			t.Errorf("the inconsistent rest read at the compacted revision %s", old)
		}
		for _, cm := range page.Items {
			names = append(names, cm.Name)
		}
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	if want := []string{"o1", "o2", "z-later"}; !slices.Equal(names, want) {
		t.Errorf("the inconsistent rest of the list: %v, want %v", names, want)
	}
}
