package replicaset

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	now := time.Unix(1000, 0)
	e := newExpectations(func() time.Time { return now })
	const k = "ns/rs"
	if !e.satisfied(k) {
		t.Fatal("unknown key not satisfied")
	}
	e.expect(k, 2, nil)
	if e.satisfied(k) {
		t.Fatal("satisfied with 2 creations outstanding")
	}
	e.creationObserved(k)
	if e.satisfied(k) {
		t.Fatal("satisfied with 1 creation outstanding")
	}
	e.creationObserved(k)
	if !e.satisfied(k) {
		t.Fatal("not satisfied after both creations observed")
	}
	e.creationObserved(k) // extra events do not go negative in a harmful way
	e.expect(k, 0, []string{"ns/p1", "ns/p2"})
	e.deletionObserved(k, "ns/p1")
	e.deletionObserved(k, "ns/p1") // the same pod twice counts once
	if e.satisfied(k) {
		t.Fatal("satisfied with p2 deletion outstanding")
	}
	e.deletionObserved(k, "ns/other")
	if e.satisfied(k) {
		t.Fatal("an unexpected pod satisfied the expectation")
	}
	now = now.Add(expectationsTimeout + time.Second)
	if !e.satisfied(k) {
		t.Fatal("expired expectations not satisfied")
	}
	e.expect(k, 1, nil)
	e.forget(k)
	if !e.satisfied(k) {
		t.Fatal("forgotten key not satisfied")
	}
}
