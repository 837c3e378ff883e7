package apiserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/flowcontrol"
	"github.com/skiff-io/skiff/internal/storage"
)

// The response headers naming the flow schema and priority level of a
// request, in net/http's canonical form (set directly in the header map:
// no allocation per request).
var (
	headerFlowSchemaUID    = http.CanonicalHeaderKey(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID)
	headerPriorityLevelUID = http.CanonicalHeaderKey(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)
)

// countTTL is how long an object count behind a LIST's seats is used
// before it is counted again.
const countTTL = 30 * time.Second

// priorityAndFairness admits requests by API Priority and Fairness
// (package flowcontrol), as upstream's --enable-priority-and-fairness
// filter: every request that reaches it is classified and gets the
// X-Kubernetes-PF-* headers; exempt requests (system:masters, which
// includes skiff's own components) run at once; the others take seats in
// their priority level, waiting in its fair queues when it is full, and
// get 429 with Retry-After when their queue is full or they waited too
// long. Watches are classified but not limited (upstream limits their
// initialization); exec, attach, port-forward, logs and proxy are neither,
// as upstream's.
type priorityAndFairness struct {
	fc     *flowcontrol.Controller
	lookup func(schema.GroupVersionResource) (*served, bool)
	counts sync.Map // *served -> *objectCount
}

func (p *priorityAndFairness) admit(w http.ResponseWriter, r *http.Request, info requestInfo, u *User) (func(), error) {
	if longRunning(info) && info.verb != "watch" {
		return noRelease, nil
	}
	req := flowcontrol.Request{
		User: u.Name, Groups: u.Groups,
		IsResource: info.isResource, Verb: info.verb, APIGroup: info.group,
		Namespace: info.namespace, Resource: info.resource, Subresource: info.sub,
	}
	if !info.isResource {
		req.Verb, req.Path = nonResourceVerb(r.Method), r.URL.Path
	}
	cl := p.fc.Classify(&req)
	fsUID, plUID := cl.Headers()
	h := w.Header()
	if fsUID != nil {
		h[headerFlowSchemaUID] = fsUID
	}
	if plUID != nil {
		h[headerPriorityLevelUID] = plUID
	}
	if cl.Exempt() || info.verb == "watch" {
		return noRelease, nil
	}
	seats := 1
	if info.verb == "list" {
		seats = p.listSeats(r, info, cl.MaxSeats())
	}
	release, err := p.fc.Admit(r.Context(), cl, seats)
	var rej *flowcontrol.Rejection
	if errors.As(err, &rej) {
		return nil, apierrors.NewTooManyRequests("Too many requests, please try again later.", int(max(time.Second, rej.RetryAfter)/time.Second))
	}
	return release, err
}

// nonResourceVerb is the verb of a request outside /api and /apis, as
// authorization and flow schemas name it.
func nonResourceVerb(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPost:
		return "post"
	case http.MethodPut:
		return "put"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return method
}

// listSeats estimates a LIST's seats from how many objects of the
// resource are stored and how the list will be served.
func (p *priorityAndFairness) listSeats(r *http.Request, info requestInfo, maxSeats int) int {
	sv, _ := p.lookup(schema.GroupVersionResource{Group: info.group, Version: info.version, Resource: info.resource})
	if sv == nil || sv.store == nil {
		return 1
	}
	q := r.URL.Query()
	work := flowcontrol.ListWork{Stored: p.count(r.Context(), sv)}
	work.Limit, _ = strconv.ParseInt(q.Get("limit"), 10, 64)
	// As the watch cache decides (storage.Cacher.List).
	work.FromCache = q.Get("continue") == "" &&
		q.Get("resourceVersionMatch") != string(metav1.ResourceVersionMatchExact) &&
		(work.Limit <= 0 || q.Get("resourceVersion") == "0")
	fs := q.Get("fieldSelector")
	work.Selective = fs != "" || q.Get("labelSelector") != ""
	if fs != "" {
		if sel, err := fields.ParseSelector(fs); err == nil {
			_, work.ByName = sel.RequiresExactMatch("metadata.name")
		}
	}
	return flowcontrol.ListSeats(work, maxSeats)
}

// objectCount is the number of stored objects of one resource. The first
// LIST counts them, and concurrent ones wait for that count; afterwards,
// the first LIST that finds the count older than countTTL counts again
// while the others use the last count.
type objectCount struct {
	first    sync.Mutex // held for the first count
	n        atomic.Int64
	at       atomic.Int64 // unix nanoseconds of the last count; 0: none yet
	counting atomic.Bool
}

func (p *priorityAndFairness) count(ctx context.Context, sv *served) int64 {
	v, ok := p.counts.Load(sv)
	if !ok {
		v, _ = p.counts.LoadOrStore(sv, &objectCount{})
	}
	oc := v.(*objectCount)
	recount := func() {
		if n, err := countObjects(ctx, sv); err == nil {
			oc.n.Store(n)
			oc.at.Store(time.Now().UnixNano())
		}
	}
	if oc.at.Load() == 0 {
		oc.first.Lock()
		if oc.at.Load() == 0 {
			recount()
		}
		oc.first.Unlock()
		if oc.at.Load() == 0 {
			return -1 // etcd did not answer: one seat
		}
		return oc.n.Load()
	}
	if time.Now().UnixNano()-oc.at.Load() > int64(countTTL) && oc.counting.CompareAndSwap(false, true) {
		recount()
		oc.counting.Store(false)
	}
	return oc.n.Load()
}

// countObjects counts a resource's stored objects: a one-item page from
// etcd, whose remaining count etcd computes without reading the values.
func countObjects(ctx context.Context, sv *served) (int64, error) {
	list := sv.stored.NewList()
	if err := sv.store.List(ctx, sv.prefix, storage.ListOptions{Limit: 1}, list); err != nil {
		return 0, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return 0, err
	}
	n := int64(meta.LenList(list))
	if rem := lm.GetRemainingItemCount(); rem != nil {
		n += *rem
	}
	return n, nil
}
