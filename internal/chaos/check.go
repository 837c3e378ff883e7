package chaos

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/watch"
)

// findings collects a check's violations, keeping the first
// maxFindings messages and counting the rest.
type findings struct {
	msgs []string
	n    int
}

const maxFindings = 50

func (f *findings) add(format string, args ...any) {
	f.n++
	if len(f.msgs) < maxFindings {
		f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	}
}

func (f *findings) list() []string {
	if f.n > len(f.msgs) {
		return append(f.msgs, fmt.Sprintf("... and %d more", f.n-len(f.msgs)))
	}
	return f.msgs
}

// applied returns each key's applied writes, in order.
func (h History) applied() map[string][]Write {
	out := make(map[string][]Write, len(h))
	for k, ws := range h {
		var a []Write
		for _, w := range ws {
			if w.Applied {
				a = append(a, w)
			}
		}
		out[k] = a
	}
	return out
}

// stateAfter is the state a key's applied writes leave.
func stateAfter(a []Write) observed {
	if len(a) == 0 || a[len(a)-1].Kind == Delete {
		return observed{}
	}
	w := a[len(a)-1]
	return observed{exists: true, value: w.Value, rv: w.RV}
}

// checkFinal compares the store's content at the end (final: the writers'
// namespace, key by key) with what the writers' applied writes leave:
// every key holds the value and resourceVersion of its last applied
// write, or is absent after a delete. owned tells the writers' keys from
// others in the namespace. It returns the violations and the number of
// keys whose last applied write is not what the store holds.
func checkFinal(h History, final map[string]observed, owned func(string) bool) (violations []string, lost int) {
	var f findings
	applied := h.applied()
	for _, k := range sortedKeys(h) {
		a := applied[k]
		want, got := stateAfter(a), final[k]
		if want == got {
			continue
		}
		lost++
		last := "no write"
		if len(a) > 0 {
			last = a[len(a)-1].String()
		}
		switch {
		case want.exists && !got.exists:
			f.add("%s is gone; its last applied write was %s", k, last)
		case want.exists:
			f.add("%s holds %s; its last applied write, %s, left %s", k, got, last, want)
		default:
			f.add("%s holds %s; its last applied write, %s, left it absent", k, got, last)
		}
	}
	for k, o := range final {
		if _, ok := h[k]; !ok && owned(k) {
			f.add("%s holds %s, but no writer wrote it", k, o)
		}
	}
	return f.list(), lost
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkWatch holds what one watcher saw (items) to the writers' history:
//
//   - resourceVersions only grow: each event's is above every earlier
//     event's, bookmark's and list's (a repeat or a reordering breaks it);
//   - each key's events are its applied writes, each once and in order,
//     with the resourceVersion each was acknowledged (or read back) at: a
//     write missing between two events is a gap, an event of a write that
//     did not take effect a phantom;
//   - a list after a 410 shows each key as its writes left it at the
//     list's resourceVersion, and the events go on from there;
//   - by the end the watcher has seen every key's last write.
func checkWatch(name string, h History, items []item, owned func(string) bool) []string {
	var f findings
	applied := h.applied()
	pos := map[string]int{} // per key, how many of its applied writes the watcher has seen
	var last int64
	for i, it := range items {
		switch it.kind {
		case itemBookmark:
			if it.rv < last {
				f.add("%s: item %d: bookmark at rv %d after rv %d", name, i, it.rv, last)
			}
			last = max(last, it.rv)
		case itemRelist:
			if it.rv < last {
				f.add("%s: item %d: list at rv %d after rv %d", name, i, it.rv, last)
			}
			last = max(last, it.rv)
			// A key absent before and after the list is not in the diff,
			// though it may have been created and deleted in between.
			for k, a := range applied {
				if p := pos[k]; p < len(a) && (p == 0 || a[p-1].Kind == Delete) && !inDiff(it.diff, k) {
					if j, ok := listPosition(a, observed{}, it.rv); ok && j > p {
						pos[k] = j
					}
				}
			}
			for _, l := range it.diff {
				if !owned(l.key) {
					continue
				}
				a := applied[l.key]
				j, ok := listPosition(a, l.observed, it.rv)
				switch {
				case !ok:
					f.add("%s: item %d: list at rv %d shows %s %s, which its applied writes never left at that revision: %s",
						name, i, it.rv, l.key, l.observed, describe(a, 0, len(a)))
				case j < pos[l.key]:
					f.add("%s: item %d: list at rv %d shows %s %s, older than its events had shown", name, i, it.rv, l.key, l.observed)
				default:
					pos[l.key] = j
				}
			}
		case itemEvent:
			if it.rv <= last {
				f.add("%s: item %d: %s %s %q at rv %d after rv %d: a repeated or reordered event", name, i, it.typ, it.key, it.value, it.rv, last)
			}
			last = max(last, it.rv)
			if !owned(it.key) {
				continue
			}
			a, p := applied[it.key], pos[it.key]
			j := -1
			if p < len(a) && shows(a[p], it) {
				j = p
			} else {
				j = findWrite(a, it)
			}
			switch {
			case j == p:
				if msg := rvMismatch(a, j, it); msg != "" {
					f.add("%s: item %d: %s", name, i, msg)
				}
				pos[it.key] = p + 1
			case j > p:
				f.add("%s: item %d: %s %s %q at rv %d skips %d applied writes: %s", name, i, it.typ, it.key, it.value, it.rv, j-p, describe(a, p, j))
				pos[it.key] = j + 1
			case j >= 0:
				f.add("%s: item %d: %s %s %q at rv %d repeats an earlier write, %s", name, i, it.typ, it.key, it.value, it.rv, a[j])
			default:
				if w, ok := findAny(h[it.key], it); ok {
					f.add("%s: item %d: %s %s %q at rv %d shows a write that did not take effect: %s", name, i, it.typ, it.key, it.value, it.rv, w)
				} else {
					f.add("%s: item %d: %s %s %q at rv %d shows a write no writer sent", name, i, it.typ, it.key, it.value, it.rv)
				}
			}
		}
	}
	for _, k := range sortedKeys(applied) {
		if a := applied[k]; pos[k] < len(a) {
			f.add("%s: never saw the last %d applied writes of %s: %s", name, len(a)-pos[k], k, describe(a, pos[k], len(a)))
		}
	}
	return f.list()
}

func inDiff(diff []listed, key string) bool {
	for _, l := range diff {
		if l.key == key {
			return true
		}
	}
	return false
}

// shows reports whether an event is the one write w makes.
func shows(w Write, it item) bool {
	if w.Value != it.value {
		return false
	}
	switch w.Kind {
	case Create:
		return it.typ == watch.Added
	case Update:
		return it.typ == watch.Modified
	}
	return it.typ == watch.Deleted
}

// findWrite returns the index of the applied write an event shows, or -1.
func findWrite(a []Write, it item) int {
	for j, w := range a {
		if shows(w, it) {
			return j
		}
	}
	return -1
}

// findAny returns the write, applied or not, an event shows.
func findAny(ws []Write, it item) (Write, bool) {
	for _, w := range ws {
		if shows(w, it) {
			return w, true
		}
	}
	return Write{}, false
}

// rvMismatch says what is wrong with the resourceVersion of an event of
// a[j], or "" when it is right: a create's or update's is the one it was
// acknowledged (or read back) at; a delete's lies between its neighbours'.
func rvMismatch(a []Write, j int, it item) string {
	w := a[j]
	if w.Kind != Delete {
		if it.rv != w.RV {
			return fmt.Sprintf("%s %s %q at rv %d; the write is at rv %d", it.typ, it.key, it.value, it.rv, w.RV)
		}
		return ""
	}
	if j > 0 && it.rv <= a[j-1].RV {
		return fmt.Sprintf("%s %s at rv %d, not after the write it deletes (rv %d)", it.typ, it.key, it.rv, a[j-1].RV)
	}
	if j+1 < len(a) && a[j+1].RV != 0 && it.rv >= a[j+1].RV {
		return fmt.Sprintf("%s %s at rv %d, not before the next write (rv %d)", it.typ, it.key, it.rv, a[j+1].RV)
	}
	return ""
}

// listPosition returns how many of a key's applied writes a list at rv
// reflects, given the state o it shows for the key; ok is false when no
// prefix of the writes leaves o at rv.
func listPosition(a []Write, o observed, rv int64) (n int, ok bool) {
	// fits: the first k writes are at or before rv, the rest after it,
	// as far as their resourceVersions are known (a delete's is not).
	fits := func(k int) bool {
		for i := k - 1; i >= 0; i-- {
			if a[i].RV != 0 {
				if a[i].RV > rv {
					return false
				}
				break
			}
		}
		for i := k; i < len(a); i++ {
			if a[i].RV != 0 {
				return a[i].RV > rv
			}
		}
		return true
	}
	if o.exists {
		for j, w := range a {
			if w.Kind != Delete && w.Value == o.value {
				return j + 1, w.RV == o.rv && fits(j+1)
			}
		}
		return 0, false
	}
	for k := 0; k <= len(a); k++ {
		if (k == 0 || a[k-1].Kind == Delete) && fits(k) {
			return k, true
		}
	}
	return 0, false
}

// describe lists a[from:to], the first few of them.
func describe(a []Write, from, to int) string {
	var parts []string
	for i := from; i < to && i < from+3; i++ {
		parts = append(parts, a[i].String())
	}
	if to-from > 3 {
		parts = append(parts, fmt.Sprintf("and %d more", to-from-3))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
