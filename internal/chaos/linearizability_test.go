package chaos

import (
	"math"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is an operation of client c on key "k" from call to ret.
func op(c int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
	in.Key = "k"
	return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
}

var (
	get      = linInput{Op: opGet}
	create   = func(v string) linInput { return linInput{Op: opCreate, Value: v} }
	update   = func(v string, rv int64) linInput { return linInput{Op: opUpdate, Value: v, RV: rv} }
	del      = func(rv int64) linInput { return linInput{Op: opDelete, RV: rv} }
	ok       = func(rv int64) linOutput { return linOutput{Result: resOK, RV: rv} }
	got      = func(v string, rv int64) linOutput { return linOutput{Result: resOK, Value: v, RV: rv} }
	notFound = linOutput{Result: resNotFound}
	conflict = linOutput{Result: resConflict}
	unknown  = linOutput{Result: resUnknown}
	never    = int64(math.MaxInt64)
)

func TestLinearizability(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"sequential", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, get, got("a", 10)),
			op(1, 4, 5, update("b", 10), ok(11)),
			op(0, 6, 7, update("c", 10), conflict),
			op(1, 8, 9, del(11), ok(0)),
			op(0, 10, 11, get, notFound),
		}, porcupine.Ok},
		{"concurrent: the get may come first", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 6, update("b", 10), ok(11)),
			op(1, 3, 4, get, got("a", 10)),
		}, porcupine.Ok},
		{"a stale read", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, update("b", 10), ok(11)),
			op(1, 4, 5, get, got("a", 10)),
		}, porcupine.Illegal},
		{"a lost write", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(1, 2, 3, get, notFound),
		}, porcupine.Illegal},
		{"two updates from one resourceVersion", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 5, update("b", 10), ok(11)),
			op(1, 3, 4, update("c", 10), ok(12)),
		}, porcupine.Illegal},
		{"a resourceVersion going back", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, del(10), ok(0)),
			op(0, 4, 5, create("b"), ok(7)),
		}, porcupine.Illegal},
		{"a lost answer, the write applied", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, update("b", 10), unknown),
			op(1, 4, 5, get, got("b", 12)),
			op(1, 6, 7, update("c", 12), ok(13)),
		}, porcupine.Ok},
		{"a lost answer, the write not applied", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, never, update("b", 10), unknown),
			op(1, 4, 5, get, got("a", 10)),
			op(1, 6, 7, update("c", 10), ok(13)),
		}, porcupine.Ok},
		{"a lost answer applied after the kill that lost it", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, update("b", 10), unknown), // the process was gone at 3
			op(1, 4, 5, get, got("a", 10)),
			op(1, 6, 7, get, got("b", 12)),
		}, porcupine.Illegal},
		{"an unseen resourceVersion as precondition", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, update("b", 10), unknown),
			op(1, 4, 5, get, got("b", 12)),
			op(1, 6, 7, update("c", 10), ok(13)),
		}, porcupine.Illegal},
		{"a lost delete, and then the key is back", []porcupine.Operation{
			op(0, 0, 1, create("a"), ok(10)),
			op(0, 2, 3, del(10), unknown),
			op(1, 4, 5, get, notFound),
			op(1, 6, 7, get, got("a", 10)),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := checkLinearizable(tc.ops, 10*time.Second, "")
			if err != nil {
				t.Fatal(err)
			}
			if st.Result != string(tc.want) {
				t.Errorf("result %s, want %s", st.Result, tc.want)
			}
		})
	}
}

// The Return of a write whose answer a kill lost is the moment the process
// was gone; any other lost answer may take effect at any time later.
func TestHistoryReturn(t *testing.T) {
	tl := newTimeline()
	at := func(ms int) time.Time { return tl.start.Add(time.Duration(ms) * time.Millisecond) }
	tl.kills = []kill{{start: at(100), end: at(150), ready: at(600)}}
	recs := []linRecord{
		{op: op(0, 0, 0, update("a", 1), unknown), call: at(90), ret: at(120)},  // lost by the kill
		{op: op(1, 0, 0, update("b", 1), unknown), call: at(110), ret: at(130)}, // sent to the dying process
		{op: op(2, 0, 0, update("c", 1), unknown), call: at(700), ret: at(800)}, // a 5xx, later
		{op: op(3, 0, 0, get, got("x", 1)), call: at(700), ret: at(800)},
	}
	ops := history(recs, tl)
	for i, want := range []int64{at(150).Sub(tl.start).Nanoseconds(), at(150).Sub(tl.start).Nanoseconds(), never, 0} {
		if ops[i].Return != want {
			t.Errorf("op %d: Return %d, want %d", i, ops[i].Return, want)
		}
	}
}
