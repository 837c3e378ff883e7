package storagetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/storage"
)

// event is what the tests compare of a watch event.
type event struct {
	Type watch.EventType
	Name string
	RV   string
}

func startWatch(t *testing.T, s storage.Interface, key string, opts storage.ListOptions) watch.Interface {
	t.Helper()
	w, err := s.Watch(testContext(t), key, opts)
	if err != nil {
		t.Fatalf("watch %s %+v: %v", key, opts, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// next returns the next event of w, skipping bookmarks when asked.
func next(t *testing.T, w watch.Interface, skipBookmarks bool) watch.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed while waiting for an event")
			}
			if ev.Type == watch.Bookmark && skipBookmarks {
				continue
			}
			return ev
		case <-timeout:
			t.Fatalf("no watch event in 10s")
		}
	}
}

func summarize(t *testing.T, ev watch.Event) event {
	t.Helper()
	cm, ok := ev.Object.(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("%s event with a %T, want *ConfigMap", ev.Type, ev.Object)
	}
	return event{Type: ev.Type, Name: cm.Name, RV: cm.ResourceVersion}
}

// expect reads len(want) events (bookmarks skipped) and compares them.
func expect(t *testing.T, w watch.Interface, want ...event) {
	t.Helper()
	var got []event
	for range want {
		got = append(got, summarize(t, next(t, w, true)))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}
}

func testWatchFromResourceVersion(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	a := create(t, s, cfg, NewConfigMap("a", nil, map[string]string{"v": "1"}))
	w := startWatch(t, s, cfg.Prefix, storage.ListOptions{ResourceVersion: a.ResourceVersion})
	a2 := update(t, s, cfg, "a", func(cm *corev1.ConfigMap) { cm.Data["v"] = "2" })
	b := create(t, s, cfg, NewConfigMap("b", nil, nil))
	deleteObj(t, s, cfg, "a")
	evs := []watch.Event{next(t, w, true), next(t, w, true), next(t, w, true)}
	got := []event{summarize(t, evs[0]), summarize(t, evs[1]), summarize(t, evs[2])}
	want := []event{{watch.Modified, "a", a2.ResourceVersion}, {watch.Added, "b", b.ResourceVersion}, {watch.Deleted, "a", got[2].RV}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}
	if mustRV(t, got[2].RV) <= mustRV(t, b.ResourceVersion) {
		t.Errorf("DELETED carries resourceVersion %s, want the delete's revision (> %s)", got[2].RV, b.ResourceVersion)
	}
	if evs[2].Object.(*corev1.ConfigMap).Data["v"] != "2" {
		t.Errorf("DELETED object is not the last stored state: %v", evs[2].Object)
	}

	// Replaying the same range from the same version gives the same events.
	again := startWatch(t, s, cfg.Prefix, storage.ListOptions{ResourceVersion: a.ResourceVersion})
	expect(t, again, want...)
}

func testWatchInitialState(t *testing.T, newStore NewStoreFunc) {
	for _, rv := range []string{"", "0"} {
		t.Run("rv="+rv, func(t *testing.T) {
			cfg := ConfigMapConfig()
			s := newStore(t, cfg)
			a := create(t, s, cfg, NewConfigMap("a", nil, nil))
			b := create(t, s, cfg, NewConfigMap("b", nil, nil))
			if rv == "0" {
				// "0" may be served from a cache that lags: wait until
				// a list at "0" sees both.
				eventually(t, "cache to hold both objects", func() bool {
					return len(list(t, s, cfg, storage.ListOptions{ResourceVersion: "0"}).Items) == 2
				})
			}
			w := startWatch(t, s, cfg.Prefix, storage.ListOptions{ResourceVersion: rv})
			expect(t, w, event{watch.Added, "a", a.ResourceVersion}, event{watch.Added, "b", b.ResourceVersion})
			c := create(t, s, cfg, NewConfigMap("c", nil, nil))
			expect(t, w, event{watch.Added, "c", c.ResourceVersion})
		})
	}
}

func testWatchExpired(t *testing.T, newStore NewStoreFunc) {
	auxCfg := ConfigMapConfig()
	aux := newStore(t, auxCfg)
	x := create(t, aux, auxCfg, NewConfigMap("x", nil, nil))
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	c, ok := s.(Compacter)
	if !ok {
		t.Skip("store cannot compact")
	}
	create(t, s, cfg, NewConfigMap("a", nil, nil))
	if err := c.Compact(testContext(t), currentRV(t, s)); err != nil {
		t.Fatalf("compact: %v", err)
	}
	old := strconv.FormatInt(mustRV(t, x.ResourceVersion)-1, 10)
	_, err := s.Watch(testContext(t), cfg.Prefix, storage.ListOptions{ResourceVersion: old})
	wantErr(t, "watch from a compacted revision", err, storage.ErrExpired)
}

func testWatchPredicateTransitions(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	start := strconv.FormatInt(currentRV(t, s), 10)
	w := startWatch(t, s, cfg.Prefix, storage.ListOptions{ResourceVersion: start, Predicate: LabelPredicate(t, "app=web")})
	create(t, s, cfg, NewConfigMap("x", map[string]string{"app": "db"}, map[string]string{}))
	x1 := update(t, s, cfg, "x", func(cm *corev1.ConfigMap) { cm.Labels["app"] = "web" })
	x2 := update(t, s, cfg, "x", func(cm *corev1.ConfigMap) { cm.Data["k"] = "v" })
	x3 := update(t, s, cfg, "x", func(cm *corev1.ConfigMap) { cm.Labels["app"] = "db" })
	deleteObj(t, s, cfg, "x")
	y := create(t, s, cfg, NewConfigMap("y", map[string]string{"app": "web"}, nil))
	expect(t, w,
		event{watch.Added, "x", x1.ResourceVersion},
		event{watch.Modified, "x", x2.ResourceVersion},
		// The object that stopped matching leaves as DELETED, in its
		// last matching state, at the revision it stopped matching.
		event{watch.Deleted, "x", x3.ResourceVersion},
		event{watch.Added, "y", y.ResourceVersion},
	)
}

func testWatchSingleKey(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	a := create(t, s, cfg, NewConfigMap("a", nil, map[string]string{}))
	create(t, s, cfg, NewConfigMap("ab", nil, map[string]string{}))
	w := startWatch(t, s, key(cfg, "a"), storage.ListOptions{ResourceVersion: a.ResourceVersion})
	update(t, s, cfg, "ab", func(cm *corev1.ConfigMap) { cm.Data["k"] = "v" })
	a2 := update(t, s, cfg, "a", func(cm *corev1.ConfigMap) { cm.Data["k"] = "v" })
	expect(t, w, event{watch.Modified, "a", a2.ResourceVersion})

	initial := startWatch(t, s, key(cfg, "a"), storage.ListOptions{ResourceVersion: "0"})
	ev := summarize(t, next(t, initial, true))
	if ev.Type != watch.Added || ev.Name != "a" {
		t.Errorf("single-key watch at 0 started with %+v, want ADDED a", ev)
	}
}

func testWatchBookmarks(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	a := create(t, s, cfg, NewConfigMap("a", nil, nil))
	w := startWatch(t, s, cfg.Prefix, storage.ListOptions{ResourceVersion: a.ResourceVersion, AllowWatchBookmarks: true})
	bookmark := func(minRV string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ev := next(t, w, false)
			if ev.Type != watch.Bookmark {
				t.Fatalf("got %s event, want only bookmarks", ev.Type)
			}
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				t.Fatalf("bookmark object is %T", ev.Object)
			}
			if cm.Name != "" || len(cm.Data) != 0 {
				t.Errorf("bookmark object has more than a resourceVersion: %+v", cm)
			}
			if mustRV(t, cm.ResourceVersion) >= mustRV(t, minRV) {
				return
			}
		}
		t.Fatalf("no bookmark at or after %s", minRV)
	}
	bookmark(a.ResourceVersion)
	b := create(t, s, cfg, NewConfigMap("b", nil, nil))
	expect(t, w, event{watch.Added, "b", b.ResourceVersion})
	bookmark(b.ResourceVersion)
}

func testWatchSendInitialEvents(t *testing.T, newStore NewStoreFunc) {
	cfg := ConfigMapConfig()
	s := newStore(t, cfg)
	a := create(t, s, cfg, NewConfigMap("a", map[string]string{"app": "web"}, nil))
	create(t, s, cfg, NewConfigMap("b", map[string]string{"app": "db"}, nil))
	c := create(t, s, cfg, NewConfigMap("c", map[string]string{"app": "web"}, nil))
	yes := true
	w := startWatch(t, s, cfg.Prefix, storage.ListOptions{
		SendInitialEvents:   &yes,
		AllowWatchBookmarks: true,
		Predicate:           LabelPredicate(t, "app=web"),
	})
	expect(t, w, event{watch.Added, "a", a.ResourceVersion}, event{watch.Added, "c", c.ResourceVersion})
	ev := next(t, w, false)
	cm, ok := ev.Object.(*corev1.ConfigMap)
	if ev.Type != watch.Bookmark || !ok {
		t.Fatalf("after the initial events got %s %T, want a BOOKMARK", ev.Type, ev.Object)
	}
	if cm.Annotations[storage.InitialEventsEndAnnotation] != "true" {
		t.Errorf("initial-events bookmark annotations = %v", cm.Annotations)
	}
	if mustRV(t, cm.ResourceVersion) < mustRV(t, c.ResourceVersion) {
		t.Errorf("initial-events bookmark at %s, before the last write %s", cm.ResourceVersion, c.ResourceVersion)
	}
	d := create(t, s, cfg, NewConfigMap("d", map[string]string{"app": "web"}, nil))
	expect(t, w, event{watch.Added, "d", d.ResourceVersion})
}
