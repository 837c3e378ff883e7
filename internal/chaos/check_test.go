package chaos

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/watch"
)

// A writer's history of one key, "a", and one object created once, "n".
func goodHistory() History {
	return History{
		"a": {
			{Key: "a", Kind: Create, Value: "v1", Answer: applied, Applied: true, RV: 10},
			{Key: "a", Kind: Update, Value: "v2", Answer: applied, Applied: true, RV: 12},
			{Key: "a", Kind: Update, Value: "v3", Answer: indeterminate}, // found not applied
			{Key: "a", Kind: Update, Value: "v4", Answer: indeterminate, Applied: true, RV: 15},
			{Key: "a", Kind: Delete, Value: "v4", Answer: applied, Applied: true},
			{Key: "a", Kind: Create, Value: "v5", Answer: applied, Applied: true, RV: 20},
		},
		"n": {
			{Key: "n", Kind: Create, Value: "m1", Answer: applied, Applied: true, RV: 11},
		},
	}
}

func ev(typ watch.EventType, key, value string, rv int64) item {
	return item{kind: itemEvent, typ: typ, key: key, value: value, rv: rv}
}

// goodEvents is what a watcher of goodHistory sees.
func goodEvents() []item {
	return []item{
		{kind: itemRelist, rv: 5},
		ev(watch.Added, "a", "v1", 10),
		ev(watch.Added, "n", "m1", 11),
		ev(watch.Modified, "a", "v2", 12),
		ev(watch.Modified, "a", "v4", 15),
		{kind: itemBookmark, rv: 16},
		ev(watch.Deleted, "a", "v4", 17),
		ev(watch.Added, "a", "v5", 20),
		ev(watch.Added, "fence", "fence", 21), // not a writer's key
	}
}

func all(string) bool { return true }

func writerKeys(k string) bool { return k != "fence" }

func TestCheckFinal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final map[string]observed
		want  string // a violation contains it; "" means none
		lost  int
	}{
		{"as written", map[string]observed{"a": {true, "v5", 20}, "n": {true, "m1", 11}}, "", 0},
		{"an acknowledged create lost", map[string]observed{"a": {true, "v5", 20}}, "n is gone", 1},
		{"the last write lost", map[string]observed{"a": {true, "v4", 15}, "n": {true, "m1", 11}}, `a holds "v4" at rv 15`, 1},
		{"a delete undone", map[string]observed{"a": {true, "v4", 15}, "n": {true, "m1", 11}}, "left \"v5\" at rv 20", 1},
		{"the right value at another rv", map[string]observed{"a": {true, "v5", 21}, "n": {true, "m1", 11}}, "at rv 21", 1},
		{"an object nobody wrote", map[string]observed{"a": {true, "v5", 20}, "n": {true, "m1", 11}, "x": {true, "?", 30}}, "no writer wrote it", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, lost := checkFinal(goodHistory(), tc.final, all)
			expect(t, v, tc.want)
			if lost != tc.lost {
				t.Errorf("lost = %d, want %d", lost, tc.lost)
			}
		})
	}
	// A delete that was acknowledged leaves the key absent.
	h := goodHistory()
	h["a"] = h["a"][:5]
	v, _ := checkFinal(h, map[string]observed{"n": {true, "m1", 11}}, all)
	expect(t, v, "")
	v, _ = checkFinal(h, map[string]observed{"a": {true, "v4", 15}, "n": {true, "m1", 11}}, all)
	expect(t, v, "left it absent")
}

func TestCheckWatch(t *testing.T) {
	without := func(i int) []item { e := goodEvents(); return append(e[:i:i], e[i+1:]...) }
	swap := func(i, j int) []item { e := goodEvents(); e[i], e[j] = e[j], e[i]; return e }
	with := func(i int, it item) []item {
		e := goodEvents()
		return append(e[:i:i], append([]item{it}, e[i:]...)...)
	}
	for _, tc := range []struct {
		name  string
		items []item
		want  string
	}{
		{"every write once, in order", goodEvents(), ""},
		{"a gap", without(3), "skips 1 applied writes: update a \"v2\""},
		{"a lost delete", without(6), "skips 1 applied writes: delete a"},
		{"the last write never seen", without(7), "never saw the last 1 applied writes of a"},
		{"a duplicate", with(4, ev(watch.Modified, "a", "v2", 12)), "a repeated or reordered event"},
		{"a duplicate of the same key", with(4, ev(watch.Modified, "a", "v2", 14)), "repeats an earlier write"},
		{"a reordering across keys", swap(1, 2), "a repeated or reordered event"},
		{"a reordering within a key", swap(3, 4), "skips 1 applied writes"},
		{"a write that was found not applied", with(4, ev(watch.Modified, "a", "v3", 13)), "shows a write that did not take effect"},
		{"a write nobody sent", with(4, ev(watch.Modified, "a", "zz", 13)), "no writer sent"},
		{"a wrong resourceVersion", with(1, ev(watch.Added, "a", "v1", 9)), "the write is at rv 10"},
		{"a bookmark going back", with(5, item{kind: itemBookmark, rv: 11}), "bookmark at rv 11 after rv 15"},
		{"a delete after its successor", func() []item { e := goodEvents(); e[6].rv = 25; return e }(), "not before the next write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, checkWatch("w", goodHistory(), tc.items, writerKeys), tc.want)
		})
	}
}

// A watcher answered 410 relists; the list must show each key as its
// writes left it at the list's revision, and events go on from there.
func TestCheckWatchRelist(t *testing.T) {
	start := goodEvents()[:3:3] // saw a's create and n
	for _, tc := range []struct {
		name  string
		items []item
		want  string
	}{
		{"list after v2", append(start,
			item{kind: itemRelist, rv: 13, diff: []listed{{"a", observed{true, "v2", 12}}}},
			ev(watch.Modified, "a", "v4", 15), ev(watch.Deleted, "a", "v4", 17), ev(watch.Added, "a", "v5", 20)), ""},
		{"list while deleted: created, deleted, absent again", append(goodEvents()[:1],
			item{kind: itemRelist, rv: 18, diff: []listed{{"n", observed{true, "m1", 11}}}},
			ev(watch.Added, "a", "v5", 20)), ""},
		{"list missing a write before its revision", append(start,
			item{kind: itemRelist, rv: 16, diff: []listed{{"a", observed{true, "v2", 12}}}},
			ev(watch.Deleted, "a", "v4", 17), ev(watch.Added, "a", "v5", 20)), "never left at that revision"},
		{"list showing a write after its revision", append(start,
			item{kind: itemRelist, rv: 14, diff: []listed{{"a", observed{true, "v4", 15}}}}), "never left at that revision"},
		{"list older than the events", append(goodEvents()[:4],
			item{kind: itemRelist, rv: 11, diff: []listed{{"a", observed{true, "v1", 10}}}}), "list at rv 11 after rv 12"},
		{"events after the list skipping a write", append(start,
			item{kind: itemRelist, rv: 13, diff: []listed{{"a", observed{true, "v2", 12}}}},
			ev(watch.Deleted, "a", "v4", 17), ev(watch.Added, "a", "v5", 20)), "skips 1 applied writes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, checkWatch("w", goodHistory(), tc.items, writerKeys), tc.want)
		})
	}
}

// expect fails unless violations is empty (want "") or one of them
// contains want.
func expect(t *testing.T, violations []string, want string) {
	t.Helper()
	if want == "" {
		if len(violations) > 0 {
			t.Errorf("want no violations, got:\n%s", strings.Join(violations, "\n"))
		}
		return
	}
	for _, v := range violations {
		if strings.Contains(v, want) {
			return
		}
	}
	t.Errorf("want a violation with %q, got:\n%s", want, strings.Join(violations, "\n"))
}
