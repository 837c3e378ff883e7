package flowcontrol

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fcregistry "github.com/skiff-io/skiff/internal/registry/flowcontrol"
)

// DefaultServerConcurrencyLimit is the seats the Limited levels share:
// upstream's --max-requests-inflight plus --max-mutating-requests-inflight
// defaults (400 + 200).
const DefaultServerConcurrencyLimit = 600

// maxQueueWait bounds how long a request waits in a queue, whatever its
// deadline (upstream's).
const maxQueueWait = time.Minute

// Config is what a Controller needs.
type Config struct {
	// ServerConcurrencyLimit is the seats the Limited priority levels
	// share, in proportion to their nominalConcurrencyShares (0:
	// DefaultServerConcurrencyLimit).
	ServerConcurrencyLimit int
	// Registerer receives the apiserver_flowcontrol_* metrics; nil means
	// none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Controller classifies requests and admits them to their priority
// level. It starts with the mandatory configuration and follows the
// stored objects through Configure (which Run calls as they change).
// Classify and Admit are safe for concurrent use and never wait for
// configuration.
type Controller struct {
	cfg     Config
	metrics *metricsSet

	mu     sync.Mutex        // serializes Configure
	levels map[string]*level // the current levels, by name; under mu

	state atomic.Pointer[state]
}

// state is one configuration, replaced whole.
type state struct {
	schemas  []*flowSchema // in matching order
	catchAll *flowSchema
}

// New returns a Controller holding the mandatory configuration.
func New(cfg Config) *Controller {
	if cfg.ServerConcurrencyLimit <= 0 {
		cfg.ServerConcurrencyLimit = DefaultServerConcurrencyLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Controller{cfg: cfg, metrics: newMetrics(cfg.Registerer), levels: map[string]*level{}}
	c.Configure(nil, nil)
	return c
}

// Classification is the outcome of Classify: the flow schema and priority
// level of a request, and its flow.
type Classification struct {
	fs   *flowSchema
	hash uint64
}

// Classify finds the flow schema of r: the matching one with the lowest
// precedence (catch-all when none matches, which the mandatory
// configuration makes impossible for authenticated users).
func (c *Controller) Classify(r *Request) Classification {
	st := c.state.Load()
	fs := classify(st.schemas, r)
	if fs == nil {
		fs = st.catchAll
	}
	cl := Classification{fs: fs}
	if !fs.level.exempt {
		cl.hash = hashFlow(fs.name, fs.flow(r))
	}
	return cl
}

// Exempt reports whether the request's level is exempt: it runs at once,
// and Admit costs nothing.
func (cl Classification) Exempt() bool { return cl.fs.level.exempt }

// FlowSchema and PriorityLevel name what the request was classified as.
func (cl Classification) FlowSchema() string    { return cl.fs.name }
func (cl Classification) PriorityLevel() string { return cl.fs.level.name }

// Headers returns the values of the X-Kubernetes-PF-FlowSchema-UID and
// X-Kubernetes-PF-PriorityLevel-UID response headers: the objects' UIDs
// (not their names, which the client may not be allowed to read), or nil
// for an object not stored yet. The slices are shared: do not modify them.
func (cl Classification) Headers() (flowSchemaUID, priorityLevelUID []string) {
	if p := cl.fs.level.uid.Load(); p != nil {
		priorityLevelUID = *p
	}
	return cl.fs.uid, priorityLevelUID
}

// MaxSeats is the most seats one request of the level may occupy (see
// ListSeats).
func (cl Classification) MaxSeats() int { return int(cl.fs.level.maxSeats.Load()) }

var noRelease = func() {}

// Admit waits until the classified request may run with seats and returns
// the func to call when it ends, or fails with a *Rejection. An exempt
// request runs at once. A queued request waits at most a quarter of the
// time ctx has left, and at most a minute, as upstream's.
func (c *Controller) Admit(ctx context.Context, cl Classification, seats int) (release func(), err error) {
	if cl.fs.level.exempt {
		cl.fs.metrics.dispatched.Inc()
		return noRelease, nil
	}
	ctx, cancel := context.WithTimeout(ctx, queueWait(ctx, c.cfg.Now()))
	defer cancel()
	return cl.fs.level.admit(ctx, cl.hash, seats, cl.fs.metrics)
}

// queueWait is how long a request may wait in a queue: a quarter of the
// time its context has left, at most a minute (upstream's rule).
func queueWait(ctx context.Context, now time.Time) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return min(maxQueueWait, d.Sub(now)/4)
	}
	return maxQueueWait
}

// Configure replaces the configuration with the given objects (the
// informers' current lists), adding the mandatory objects that are
// missing. Priority levels keep their queues and running requests across
// configurations; a level that goes away lets its waiting requests drain.
// A PriorityLevelConfiguration whose spec is malformed is ignored, and so
// is a FlowSchema that names a missing level (it is dangling). It returns
// the FlowSchemas whose Dangling condition is not what it should be,
// copies with the condition set, for the caller to write.
func (c *Controller) Configure(pls []*flowcontrolv1.PriorityLevelConfiguration, fss []*flowcontrolv1.FlowSchema) []*flowcontrolv1.FlowSchema {
	c.mu.Lock()
	defer c.mu.Unlock()

	specs := map[string]*flowcontrolv1.PriorityLevelConfiguration{}
	for _, pl := range pls {
		if err := wellFormed(pl); err != nil {
			c.cfg.Logger.Warn("ignoring malformed PriorityLevelConfiguration", "name", pl.Name, "err", err)
			continue
		}
		specs[pl.Name] = pl
	}
	for _, pl := range fcregistry.MandatoryPriorityLevels() {
		if specs[pl.Name] == nil {
			specs[pl.Name] = pl
		}
	}
	shareSum := 0
	for _, pl := range specs {
		shareSum += shares(pl)
	}
	levels := make(map[string]*level, len(specs))
	for name, pl := range specs {
		exempt := pl.Spec.Type == flowcontrolv1.PriorityLevelEnablementExempt
		l := c.levels[name]
		if l == nil || l.exempt != exempt {
			l = newLevel(name, exempt, c.metrics, c.cfg.Now)
		}
		l.configure(levelConfigOf(pl, c.cfg.ServerConcurrencyLimit, shareSum))
		levels[name] = l
	}
	c.levels = levels

	var updates []*flowcontrolv1.FlowSchema
	st := &state{}
	seen := map[string]bool{}
	for _, fs := range fss {
		l := levels[fs.Spec.PriorityLevelConfiguration.Name]
		if u := danglingUpdate(fs, l == nil, c.cfg.Now()); u != nil {
			updates = append(updates, u)
		}
		if l == nil {
			continue
		}
		st.schemas = append(st.schemas, c.compile(fs, l))
		seen[fs.Name] = true
	}
	for _, fs := range fcregistry.MandatoryFlowSchemas() {
		if !seen[fs.Name] {
			st.schemas = append(st.schemas, c.compile(fs, levels[fs.Spec.PriorityLevelConfiguration.Name]))
		}
	}
	sortSchemas(st.schemas)
	for _, fs := range st.schemas {
		if fs.name == flowcontrolv1.FlowSchemaNameCatchAll {
			st.catchAll = fs
		}
	}
	c.state.Store(st)
	return updates
}

func (c *Controller) compile(fs *flowcontrolv1.FlowSchema, l *level) *flowSchema {
	out := &flowSchema{
		name:       fs.Name,
		precedence: fs.Spec.MatchingPrecedence,
		level:      l,
		rules:      fs.Spec.Rules,
		metrics:    c.metrics.forSchema(l.name, fs.Name),
	}
	if fs.Spec.MatchingPrecedence == 0 {
		out.precedence = 1000 // upstream's default
	}
	if fs.UID != "" {
		out.uid = []string{string(fs.UID)}
	}
	if fs.Spec.DistinguisherMethod != nil {
		out.distinguisher = fs.Spec.DistinguisherMethod.Type
	}
	return out
}

// wellFormed rejects what validation lets through only if the object was
// stored some other way: a level's type must agree with its name and its
// parts.
func wellFormed(pl *flowcontrolv1.PriorityLevelConfiguration) error {
	exempt := pl.Spec.Type == flowcontrolv1.PriorityLevelEnablementExempt
	switch {
	case exempt != (pl.Name == flowcontrolv1.PriorityLevelConfigurationNameExempt):
		return fmt.Errorf("type %q does not go with name %q", pl.Spec.Type, pl.Name)
	case exempt:
		return nil
	case pl.Spec.Type != flowcontrolv1.PriorityLevelEnablementLimited || pl.Spec.Limited == nil:
		return fmt.Errorf("type %q without its settings", pl.Spec.Type)
	}
	lr := pl.Spec.Limited.LimitResponse
	switch {
	case lr.Type == flowcontrolv1.LimitResponseTypeReject && lr.Queuing == nil:
		return nil
	case lr.Type == flowcontrolv1.LimitResponseTypeQueue && lr.Queuing != nil && lr.Queuing.Queues > 0 &&
		lr.Queuing.HandSize > 0 && lr.Queuing.HandSize <= lr.Queuing.Queues && lr.Queuing.QueueLengthLimit > 0:
		return nil
	}
	return fmt.Errorf("limitResponse %q with queuing %v", lr.Type, lr.Queuing)
}

// shares is a level's nominalConcurrencyShares, defaulted as upstream's v1
// (30 for a Limited level, 0 for the exempt one).
func shares(pl *flowcontrolv1.PriorityLevelConfiguration) int {
	switch {
	case pl.Spec.Limited != nil:
		if s := pl.Spec.Limited.NominalConcurrencyShares; s != nil {
			return int(*s)
		}
		return 30
	case pl.Spec.Exempt != nil && pl.Spec.Exempt.NominalConcurrencyShares != nil:
		return int(*pl.Spec.Exempt.NominalConcurrencyShares)
	}
	return 0
}

// levelConfigOf derives a level's settings: its nominal limit is its
// share of the server's, rounded up, and is also its limit (skiff does not
// borrow; see the package comment).
func levelConfigOf(pl *flowcontrolv1.PriorityLevelConfiguration, serverLimit, shareSum int) levelConfig {
	cfg := levelConfig{uid: string(pl.UID)}
	if shareSum > 0 {
		cfg.nominal = (serverLimit*shares(pl) + shareSum - 1) / shareSum
	}
	cfg.limit = max(1, cfg.nominal)
	if lim := pl.Spec.Limited; lim != nil {
		if q := lim.LimitResponse.Queuing; lim.LimitResponse.Type == flowcontrolv1.LimitResponseTypeQueue && q != nil {
			cfg.queues, cfg.handSize, cfg.queueLengthLimit = int(q.Queues), int(q.HandSize), int(q.QueueLengthLimit)
		} else {
			cfg.reject = true
		}
	}
	return cfg
}

// danglingUpdate returns a copy of fs with its Dangling condition as it
// should be, or nil when it already is (upstream's messages).
func danglingUpdate(fs *flowcontrolv1.FlowSchema, dangling bool, now time.Time) *flowcontrolv1.FlowSchema {
	want := flowcontrolv1.FlowSchemaCondition{Type: flowcontrolv1.FlowSchemaConditionDangling}
	pl := fs.Spec.PriorityLevelConfiguration.Name
	if dangling {
		want.Status, want.Reason = flowcontrolv1.ConditionTrue, "NotFound"
		want.Message = fmt.Sprintf("This FlowSchema references the PriorityLevelConfiguration object named %q but there is no such object", pl)
	} else {
		want.Status, want.Reason = flowcontrolv1.ConditionFalse, "Found"
		want.Message = fmt.Sprintf("This FlowSchema references the PriorityLevelConfiguration object named %q and it exists", pl)
	}
	idx := -1
	for i, cond := range fs.Status.Conditions {
		if cond.Type == flowcontrolv1.FlowSchemaConditionDangling {
			if cond.Status == want.Status && cond.Reason == want.Reason && cond.Message == want.Message {
				return nil
			}
			idx = i
		}
	}
	want.LastTransitionTime = metav1.NewTime(now)
	out := fs.DeepCopy()
	if idx >= 0 {
		out.Status.Conditions[idx] = want
	} else {
		out.Status.Conditions = append(out.Status.Conditions, want)
	}
	return out
}
