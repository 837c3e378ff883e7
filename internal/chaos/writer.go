package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
)

// Kind is what a write does.
type Kind string

const (
	Create Kind = "create"
	Update Kind = "update" // with the last known resourceVersion as precondition
	Delete Kind = "delete" // with the last known resourceVersion as precondition
)

// Write is one write a writer sent, and what became of it.
type Write struct {
	Key  string
	Kind Kind
	// Value is what a create or update stores; for a delete, the value it
	// removes. Every create and update stores a value no other write
	// stores, so a value names the write.
	Value string
	// Answer is what the server's answer said.
	Answer outcome
	// Applied is whether the write took effect: it was acknowledged, or
	// its answer was lost and the writer's read afterwards found it.
	Applied bool
	// RV is the object's resourceVersion after an applied create or
	// update (0 for a delete: its revision is not in the answer).
	RV int64
	// NoKill marks an indeterminate write that no kill explains (a 5xx or
	// a timeout from a live server): it could take effect after the read
	// that found it had not.
	NoKill bool
}

func (w Write) String() string {
	s := fmt.Sprintf("%s %s %q (%s", w.Kind, w.Key, w.Value, w.Answer)
	if w.Answer == indeterminate {
		if w.Applied {
			s += ", found applied"
		} else {
			s += ", found not applied"
		}
		if w.NoKill {
			s += ", no kill explains it"
		}
	}
	if w.RV != 0 {
		s += fmt.Sprintf(", rv %d", w.RV)
	}
	return s + ")"
}

// History is what the writers did: each key's writes in the order its
// writer sent them (a key has one writer).
type History map[string][]Write

// writer creates, updates and deletes its own keys, one request at a
// time, and keeps what it knows of each key's state. Most writes go to a
// few keys it keeps rewriting; some create new objects that stay.
type writer struct {
	id     int
	client rest.Interface
	ns     string
	tl     *timeline
	rnd    *rand.Rand
	keys   []string
	state  map[string]observed
	seq    int
	hist   History
	stats  WriteStats
	// lost counts writes refused because the state the writer had been
	// acknowledged was gone, and keys read back in a state no write left.
	lost   int
	report func(format string, args ...any) // a violation
}

// WriteStats counts the writers' writes.
type WriteStats struct {
	AckedCreates, AckedUpdates, AckedDeletes int
	// Indeterminate writes, and how many of them had taken effect.
	Indeterminate, IndeterminateApplied int
	// NoKill counts indeterminate writes that no kill explains.
	NoKill int
	// Refused counts writes answered with 429 or refused connections
	// (the server down).
	Refused int
}

func (s *WriteStats) add(o WriteStats) {
	s.AckedCreates += o.AckedCreates
	s.AckedUpdates += o.AckedUpdates
	s.AckedDeletes += o.AckedDeletes
	s.Indeterminate += o.Indeterminate
	s.IndeterminateApplied += o.IndeterminateApplied
	s.NoKill += o.NoKill
	s.Refused += o.Refused
}

// Acked is the number of acknowledged writes.
func (s WriteStats) Acked() int { return s.AckedCreates + s.AckedUpdates + s.AckedDeletes }

func newWriter(id int, client rest.Interface, ns string, keys int, tl *timeline, seed uint64, report func(string, ...any)) *writer {
	w := &writer{id: id, client: client, ns: ns, tl: tl, rnd: rand.New(rand.NewPCG(seed, uint64(id))),
		state: map[string]observed{}, hist: History{}, report: report}
	for i := range keys {
		w.keys = append(w.keys, fmt.Sprintf("w%d-k%d", id, i))
	}
	return w
}

// run writes until stop is closed, finishing the write in flight.
func (w *writer) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		w.step(ctx)
	}
}

// step sends one write: a create of a new object one time in ten, else a
// write to one of the writer's keys that fits what it knows of the key.
func (w *writer) step(ctx context.Context) {
	if w.rnd.IntN(10) == 0 {
		w.write(ctx, fmt.Sprintf("w%d-n%d", w.id, w.seq), Create)
		return
	}
	key := w.keys[w.rnd.IntN(len(w.keys))]
	switch {
	case !w.state[key].exists:
		w.write(ctx, key, Create)
	case w.rnd.IntN(4) == 0:
		w.write(ctx, key, Delete)
	default:
		w.write(ctx, key, Update)
	}
}

func (w *writer) write(ctx context.Context, key string, kind Kind) {
	w.seq++
	before := w.state[key]
	wr := Write{Key: key, Kind: kind, Value: fmt.Sprintf("w%d-%d", w.id, w.seq)}
	call := time.Now()
	var (
		after observed
		err   error
	)
	switch kind {
	case Create:
		after, err = createObj(ctx, w.client, w.ns, key, wr.Value)
	case Update:
		after, err = updateObj(ctx, w.client, w.ns, key, wr.Value, before.rv)
	case Delete:
		wr.Value = before.value
		err = deleteObj(ctx, w.client, w.ns, key, before.rv)
	}
	ret := time.Now()
	if ctx.Err() != nil {
		return // the run is ending early; nothing is checked
	}
	wr.Answer = classify(err)
	switch wr.Answer {
	case applied:
		wr.Applied = true
		switch kind {
		case Create:
			w.stats.AckedCreates++
		case Update:
			w.stats.AckedUpdates++
		case Delete:
			w.stats.AckedDeletes++
		}
		if kind != Delete {
			if after.value != wr.Value {
				w.report("%s: answered with %s, not the value written", wr, after)
			}
			wr.RV = after.rv
		}
		w.state[key] = after
	case refused:
		if apierrors.IsTooManyRequests(err) || !isStatus(err) {
			w.stats.Refused++
			pause(ctx, 20*time.Millisecond)
			return // never took effect: not part of the key's history
		}
		// Only this writer writes key, and it knows the key's state: a
		// conflict, not found or already exists means the state it was
		// acknowledged last is gone (a lost write) or the server is wrong
		// about it. Any other refusal is a request the server should
		// have taken.
		now, gerr := getAnswered(ctx, w.client, w.ns, key)
		if gerr != nil {
			w.report("%s: refused (%v), and reading it back failed: %v", wr, err, gerr)
			return
		}
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
			w.lost++
			w.report("%s: refused (%v) though the last acknowledged state was %s; the key holds %s", wr, err, before, now)
		} else {
			w.report("%s: refused unexpectedly: %v", wr, err)
		}
		w.state[key] = now
	case indeterminate:
		w.stats.Indeterminate++
		if _, ok := w.tl.killDuring(call, ret); !ok {
			wr.NoKill = true
			w.stats.NoKill++
		}
		now, gerr := getAnswered(ctx, w.client, w.ns, key)
		if gerr != nil {
			if ctx.Err() == nil {
				w.report("%s: answer lost (%v), and reading it back failed: %v", wr, err, gerr)
			}
			return
		}
		switch {
		case kind != Delete && now.exists && now.value == wr.Value:
			wr.Applied, wr.RV = true, now.rv
		case kind == Delete && !now.exists:
			wr.Applied = true
		case now == before:
		default:
			w.lost++
			w.report("%s: answer lost (%v); the key holds %s, neither the state before (%s) nor after the write", wr, err, now, before)
		}
		if wr.Applied {
			w.stats.IndeterminateApplied++
		}
		w.state[key] = now
	}
	w.hist[key] = append(w.hist[key], wr)
}

func isStatus(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st)
}
