package podset

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	now := time.Unix(1000, 0)
	e := NewExpectations()
	const k = "ns/rs"
	if !e.Satisfied(k, now) {
		t.Fatal("unknown key not satisfied")
	}
	e.Expect(k, 2, nil, now)
	if e.Satisfied(k, now) {
		t.Fatal("satisfied with 2 creations outstanding")
	}
	e.CreationObserved(k)
	if e.Satisfied(k, now) {
		t.Fatal("satisfied with 1 creation outstanding")
	}
	e.CreationObserved(k)
	if !e.Satisfied(k, now) {
		t.Fatal("not satisfied after both creations observed")
	}
	e.CreationObserved(k) // extra events do not go negative in a harmful way
	e.Expect(k, 0, []string{"ns/p1", "ns/p2"}, now)
	e.DeletionObserved(k, "ns/p1")
	e.DeletionObserved(k, "ns/p1") // the same pod twice counts once
	if e.Satisfied(k, now) {
		t.Fatal("satisfied with p2 deletion outstanding")
	}
	e.DeletionObserved(k, "ns/other")
	if e.Satisfied(k, now) {
		t.Fatal("an unexpected pod satisfied the expectation")
	}
	now = now.Add(ExpectationsTimeout + time.Second)
	if !e.Satisfied(k, now) {
		t.Fatal("expired expectations not satisfied")
	}
	e.Expect(k, 1, nil, now)
	e.Forget(k)
	if !e.Satisfied(k, now) {
		t.Fatal("forgotten key not satisfied")
	}
}
