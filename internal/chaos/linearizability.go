package chaos

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
)

// The linearizability workload: a few clients race on a few keys with
// consistent gets, creates, and updates and deletes that carry the last
// resourceVersion the client saw as precondition. Each request is an
// operation of the history porcupine checks against linModel, a
// ConfigMap whose resourceVersion changes with every write.

type linOp string

const (
	opGet    linOp = "get"
	opCreate linOp = "create"
	opUpdate linOp = "update"
	opDelete linOp = "delete"
)

// linInput is an operation's request.
type linInput struct {
	Op    linOp
	Key   string
	Value string // create, update
	RV    int64  // update, delete: the precondition
}

type linResult string

const (
	resOK       linResult = "ok"
	resNotFound linResult = "not found"
	resConflict linResult = "conflict"
	resExists   linResult = "already exists"
	// resUnknown: the answer was lost; the write may have taken effect.
	resUnknown linResult = "unknown"
)

// linOutput is an operation's answer.
type linOutput struct {
	Result linResult
	Value  string // get
	RV     int64  // get, and the new resourceVersion of a create or update
}

// linState is one key's state in the model. RV 0 with Exists means a
// write whose answer was lost stored Value at a resourceVersion nobody
// has seen yet; MaxRV is the highest resourceVersion the key has been
// seen at, which a later write must exceed.
type linState struct {
	Exists bool
	Value  string
	RV     int64
	MaxRV  int64
}

// linStep is the model's step: the states key state s may move to when
// in is answered with out; none when that answer is impossible.
func linStep(s linState, in linInput, out linOutput) []linState {
	atRV := s.Exists && s.RV != 0 && s.RV == in.RV
	switch in.Op {
	case opGet:
		switch out.Result {
		case resNotFound:
			if !s.Exists {
				return []linState{s}
			}
		case resOK:
			if !s.Exists || s.Value != out.Value {
				return nil
			}
			if s.RV == out.RV {
				return []linState{s}
			}
			if s.RV == 0 && out.RV > s.MaxRV { // the lost write's resourceVersion, now seen
				return []linState{{Exists: true, Value: s.Value, RV: out.RV, MaxRV: out.RV}}
			}
		}
	case opCreate:
		switch out.Result {
		case resOK:
			if !s.Exists && out.RV > s.MaxRV {
				return []linState{{Exists: true, Value: in.Value, RV: out.RV, MaxRV: out.RV}}
			}
		case resExists:
			if s.Exists {
				return []linState{s}
			}
		case resUnknown:
			if !s.Exists {
				return []linState{s, {Exists: true, Value: in.Value, MaxRV: s.MaxRV}}
			}
			return []linState{s}
		}
	case opUpdate:
		switch out.Result {
		case resOK:
			if atRV && out.RV > s.MaxRV {
				return []linState{{Exists: true, Value: in.Value, RV: out.RV, MaxRV: out.RV}}
			}
		case resConflict:
			// A state at an unseen resourceVersion conflicts with every
			// precondition: each was seen before that write.
			if s.Exists && !atRV {
				return []linState{s}
			}
		case resNotFound:
			if !s.Exists {
				return []linState{s}
			}
		case resUnknown:
			if atRV {
				return []linState{s, {Exists: true, Value: in.Value, MaxRV: s.MaxRV}}
			}
			return []linState{s}
		}
	case opDelete:
		switch out.Result {
		case resOK:
			if atRV {
				return []linState{{MaxRV: s.MaxRV}}
			}
		case resConflict:
			if s.Exists && !atRV {
				return []linState{s}
			}
		case resNotFound:
			if !s.Exists {
				return []linState{s}
			}
		case resUnknown:
			if atRV {
				return []linState{s, {MaxRV: s.MaxRV}}
			}
			return []linState{s}
		}
	}
	return nil
}

// linModel is a map of keys to ConfigMaps, each key on its own
// (porcupine checks each key's operations apart).
var linModel = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range sortedKeys(byKey) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{linState{}} },
	Hash: func(state any) uint64 {
		s := state.(linState)
		h := fnv.New64a()
		fmt.Fprintf(h, "%t/%s/%d/%d", s.Exists, s.Value, s.RV, s.MaxRV)
		return h.Sum64()
	},
	Step: func(state, input, output any) []any {
		var out []any
		for _, s := range linStep(state.(linState), input.(linInput), output.(linOutput)) {
			out = append(out, s)
		}
		return out
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		s := fmt.Sprintf("%s(%s", in.Op, in.Key)
		if in.Value != "" {
			s += ", " + in.Value
		}
		if in.RV != 0 {
			s += fmt.Sprintf(", rv=%d", in.RV)
		}
		s += ") -> " + string(out.Result)
		if out.Value != "" {
			s += " " + out.Value
		}
		if out.RV != 0 {
			s += fmt.Sprintf(" rv=%d", out.RV)
		}
		return s
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		if !s.Exists {
			return "absent"
		}
		if s.RV == 0 {
			return s.Value + " at an unseen rv"
		}
		return fmt.Sprintf("%s at rv %d", s.Value, s.RV)
	},
}).ToModel()

// LinStats counts the linearizability workload and says what the check
// found.
type LinStats struct {
	Ops          int // operations in the history
	Gets, Writes int
	// Indeterminate counts writes whose answer was lost.
	Indeterminate int
	// Result is porcupine's verdict: ok, illegal or unknown (timed out).
	Result string
	// CheckTime is how long the check took.
	CheckTime time.Duration
	// Visualization is the file porcupine drew the history in, when the
	// check failed.
	Visualization string
}

// linClient is one client of the linearizability workload.
type linClient struct {
	id     int
	client rest.Interface
	ns     string
	keys   []string
	tl     *timeline
	rnd    *rand.Rand
	seen   map[string]int64 // the last resourceVersion seen of each key
	seq    int
	ops    []linRecord
	report func(format string, args ...any)
}

func newLinClient(id int, client rest.Interface, ns string, keys []string, tl *timeline, seed uint64, report func(string, ...any)) *linClient {
	return &linClient{id: id, client: client, ns: ns, keys: keys, tl: tl, rnd: rand.New(rand.NewPCG(seed, uint64(2000+id))),
		seen: map[string]int64{}, report: report}
}

func (c *linClient) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		c.step(ctx)
	}
}

// step sends one request and records it as an operation.
func (c *linClient) step(ctx context.Context) {
	key := c.keys[c.rnd.IntN(len(c.keys))]
	in := linInput{Key: key}
	switch r := c.rnd.IntN(100); {
	case r < 30 || (r >= 50 && c.seen[key] == 0):
		in.Op = opGet
	case r < 50:
		in.Op = opCreate
	case r < 85:
		in.Op = opUpdate
	default:
		in.Op = opDelete
	}
	if in.Op == opCreate || in.Op == opUpdate {
		c.seq++
		in.Value = fmt.Sprintf("c%d-%d", c.id, c.seq)
	}
	if in.Op == opUpdate || in.Op == opDelete {
		in.RV = c.seen[key]
	}
	call := time.Now()
	var (
		o   observed
		err error
	)
	switch in.Op {
	case opGet:
		o, err = getObj(ctx, c.client, c.ns, key)
	case opCreate:
		o, err = createObj(ctx, c.client, c.ns, key, in.Value)
	case opUpdate:
		o, err = updateObj(ctx, c.client, c.ns, key, in.Value, in.RV)
	case opDelete:
		err = deleteObj(ctx, c.client, c.ns, key, in.RV)
	}
	ret := time.Now()
	if ctx.Err() != nil {
		return
	}
	var out linOutput
	switch classify(err) {
	case applied:
		out.Result = resOK
		switch in.Op {
		case opGet:
			if !o.exists {
				out.Result = resNotFound
				break
			}
			out.Value, out.RV = o.value, o.rv
			c.seen[key] = o.rv
		case opCreate, opUpdate:
			out.RV = o.rv
			c.seen[key] = o.rv
		}
	case refused:
		switch {
		case apierrors.IsNotFound(err):
			out.Result = resNotFound
		case apierrors.IsAlreadyExists(err):
			out.Result = resExists
		case apierrors.IsConflict(err):
			out.Result = resConflict
		case apierrors.IsTooManyRequests(err) || !isStatus(err):
			pause(ctx, 20*time.Millisecond)
			return // never took effect
		default:
			c.report("linearizability client %d: %s %s: unexpected answer: %v", c.id, in.Op, key, err)
			return
		}
	case indeterminate:
		if in.Op == opGet {
			pause(ctx, 20*time.Millisecond)
			return // a read without an answer constrains nothing
		}
		out.Result = resUnknown
		pause(ctx, 20*time.Millisecond)
	}
	c.ops = append(c.ops, linRecord{
		op:   porcupine.Operation{ClientId: c.id, Input: in, Call: call.Sub(c.tl.start).Nanoseconds(), Output: out, Return: ret.Sub(c.tl.start).Nanoseconds()},
		call: call, ret: ret,
	})
}

// linRecord is an operation as a client recorded it.
type linRecord struct {
	op        porcupine.Operation
	call, ret time.Time
}

// history returns the operations for porcupine once the run is over.
// A write whose answer was lost took effect, if at all, before the
// answer was lost: if a kill lost it, before the process was gone;
// otherwise (a 5xx, a timeout) perhaps at any time later.
func history(recs []linRecord, tl *timeline) []porcupine.Operation {
	ops := make([]porcupine.Operation, len(recs))
	for i, r := range recs {
		ops[i] = r.op
		if r.op.Output.(linOutput).Result != resUnknown {
			continue
		}
		ops[i].Return = math.MaxInt64
		if k, ok := tl.killDuring(r.call, r.ret); ok {
			end := k.end
			if end.Before(r.call) {
				end = r.call
			}
			ops[i].Return = end.Sub(tl.start).Nanoseconds()
		}
	}
	return ops
}

// checkLinearizable checks a history with porcupine for at most timeout;
// when it is not linearizable it draws it into a file in dir (when dir is
// not "").
func checkLinearizable(ops []porcupine.Operation, timeout time.Duration, dir string) (LinStats, error) {
	st := LinStats{Ops: len(ops)}
	for _, op := range ops {
		if op.Input.(linInput).Op == opGet {
			st.Gets++
		} else {
			st.Writes++
		}
		if op.Output.(linOutput).Result == resUnknown {
			st.Indeterminate++
		}
	}
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(linModel, ops, timeout)
	st.CheckTime = time.Since(start)
	st.Result = string(res)
	if res == porcupine.Illegal && dir != "" {
		// Again, keeping what the drawing needs: the longest linearizable
		// prefixes.
		_, info := porcupine.CheckOperationsVerbose(linModel, ops, timeout)
		f, err := os.CreateTemp(dir, "linearizability-*.html")
		if err != nil {
			return st, err
		}
		defer f.Close()
		if err := porcupine.Visualize(linModel, info, f); err != nil {
			return st, err
		}
		st.Visualization = f.Name()
		if err := writeHistory(ops, strings.TrimSuffix(f.Name(), ".html")+".txt"); err != nil {
			return st, err
		}
	}
	return st, nil
}

// writeHistory writes a history as text, one operation a line in the
// order of their calls, for a reader to follow one key.
func writeHistory(ops []porcupine.Operation, path string) error {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for _, op := range ops {
		ret := "never"
		if op.Return != math.MaxInt64 {
			ret = strconv.FormatInt(op.Return, 10)
		}
		fmt.Fprintf(&b, "%s client %d [%d, %s] %s\n", op.Input.(linInput).Key, op.ClientId, op.Call, ret,
			linModel.DescribeOperation(op.Input, op.Output))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
