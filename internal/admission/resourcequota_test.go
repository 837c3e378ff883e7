package admission

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

const quotaPrefix = "/registry/resourcequotas/"

// quotaStore is a resourcequotas store: cached answers lists at
// resourceVersion "0", stored consistent lists and GuaranteedUpdate.
// conflicts makes that many GuaranteedUpdate attempts lose a race (the
// update function runs, its result is dropped, and stored is re-read).
type quotaStore struct {
	storage.Interface
	mu             sync.Mutex
	cached, stored map[string]*corev1.ResourceQuota
	conflicts      int
	liveLists      int
}

func newQuotaStore(cached, stored []*corev1.ResourceQuota) *quotaStore {
	s := &quotaStore{cached: map[string]*corev1.ResourceQuota{}, stored: map[string]*corev1.ResourceQuota{}}
	for _, q := range cached {
		s.cached[quotaPrefix+q.Namespace+"/"+q.Name] = q.DeepCopy()
	}
	for _, q := range stored {
		s.stored[quotaPrefix+q.Namespace+"/"+q.Name] = q.DeepCopy()
	}
	return s
}

func (s *quotaStore) List(_ context.Context, prefix string, opts storage.ListOptions, out runtime.Object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.stored
	if opts.ResourceVersion == "0" {
		from = s.cached
	} else {
		s.liveLists++
	}
	list := out.(*corev1.ResourceQuotaList)
	for k, q := range from {
		if strings.HasPrefix(k, prefix) {
			list.Items = append(list.Items, *q.DeepCopy())
		}
	}
	return nil
}

func (s *quotaStore) GuaranteedUpdate(_ context.Context, key string, _ runtime.Object, _ bool, _ *storage.Preconditions, try storage.UpdateFunc) error {
	for {
		s.mu.Lock()
		cur, ok := s.stored[key]
		lose := s.conflicts > 0
		if lose {
			s.conflicts--
		}
		s.mu.Unlock()
		if !ok {
			return storage.ErrNotFound
		}
		next, err := try(cur.DeepCopy())
		if err != nil {
			return err
		}
		if lose {
			continue
		}
		// Compare-and-swap, as the real store: a write that raced
		// another one tries again on what that one stored.
		s.mu.Lock()
		if s.stored[key] != cur {
			s.mu.Unlock()
			continue
		}
		s.stored[key] = next.(*corev1.ResourceQuota)
		s.mu.Unlock()
		return nil
	}
}

func (s *quotaStore) used(ns, name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return quantities(s.stored[quotaPrefix+ns+"/"+name].Status.Used)
}

func quantities(l corev1.ResourceList) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		out[string(k)] = v.String()
	}
	return out
}

func rlist(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// synced is a quota in ns whose status the controller has computed:
// status.hard = spec.hard, status.used as given.
func synced(ns, name string, hard, used corev1.ResourceList, opts ...func(*corev1.ResourceQuota)) *corev1.ResourceQuota {
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
		Status:     corev1.ResourceQuotaStatus{Hard: hard.DeepCopy(), Used: used},
	}
	for _, o := range opts {
		o(q)
	}
	return q
}

func quotaPod(name string, req, lim corev1.ResourceList) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause",
			Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}}},
	}
}

var (
	servicesRes = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "services", Namespaced: true}
	rsRes       = &registry.Resource{GroupVersion: schema.GroupVersion{Group: "apps", Version: "v1"}, Name: "replicasets", Namespaced: true}
	lrRes       = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "limitranges", Namespaced: true}
)

func createReq(res *registry.Resource, obj runtime.Object) *apiserver.AdmissionRequest {
	m := obj.(metav1.Object)
	return &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: res, Namespace: "ns", Name: m.GetName(), Obj: obj}
}

func TestResourceQuotaAdmission(t *testing.T) {
	hard := rlist("pods", "5", "cpu", "1", "memory", "500Mi", "requests.example.com/dongle", "3",
		"services", "10", "services.nodeports", "1", "services.loadbalancers", "1", "count/replicasets.apps", "5")
	used := rlist("pods", "1", "cpu", "500m", "memory", "252Mi", "requests.example.com/dongle", "2",
		"services", "1", "services.nodeports", "1", "services.loadbalancers", "0", "count/replicasets.apps", "0")
	nodePort := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "np", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "cip", Namespace: "ns", ResourceVersion: "7"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}
	tests := []struct {
		name    string
		quotas  []*corev1.ResourceQuota
		req     *apiserver.AdmissionRequest
		wantErr string // the Forbidden message; "" admits
		want    map[string]string
	}{{
		name:   "a pod that fits is charged",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req:    createReq(podsRes, quotaPod("ok", rlist("cpu", "100m", "memory", "10Mi"), nil)),
		want: map[string]string{"pods": "2", "cpu": "600m", "memory": "262Mi", "requests.example.com/dongle": "2",
			"services": "1", "services.nodeports": "1", "services.loadbalancers": "0", "count/replicasets.apps": "0"},
	}, {
		name:    "a pod over cpu is refused",
		quotas:  []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req:     createReq(podsRes, quotaPod("fail-pod", rlist("cpu", "600m", "memory", "100Mi"), nil)),
		wantErr: `pods "fail-pod" is forbidden: exceeded quota: q, requested: cpu=600m, used: cpu=500m, limited: cpu=1`,
	}, {
		name:   "a pod over an extended resource is refused",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req: createReq(podsRes, quotaPod("ext", rlist("cpu", "100m", "memory", "10Mi", "example.com/dongle", "2"),
			rlist("example.com/dongle", "2"))),
		wantErr: `pods "ext" is forbidden: exceeded quota: q, requested: requests.example.com/dongle=2, used: requests.example.com/dongle=2, limited: requests.example.com/dongle=3`,
	}, {
		name:    "a pod without the requests a quota bounds is refused",
		quotas:  []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req:     createReq(podsRes, quotaPod("bare", rlist("cpu", "100m"), nil)),
		wantErr: `pods "bare" is forbidden: failed quota: q: must specify memory for: c`,
	}, {
		name:    "a quota without usage refuses what it bounds",
		quotas:  []*corev1.ResourceQuota{synced("ns", "q", rlist("pods", "5", "services", "3"), rlist("services", "0"))},
		req:     createReq(podsRes, quotaPod("p", nil, nil)),
		wantErr: `pods "p" is forbidden: status unknown for quota: q, resources: pods`,
	}, {
		name: "a scoped quota ignores pods outside its scope",
		quotas: []*corev1.ResourceQuota{synced("ns", "be", rlist("pods", "0"), rlist("pods", "0"), func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
		})},
		req:  createReq(podsRes, quotaPod("burst", rlist("cpu", "1"), nil)),
		want: map[string]string{"pods": "0"},
	}, {
		name: "a scoped quota bounds pods in its scope",
		quotas: []*corev1.ResourceQuota{synced("ns", "be", rlist("pods", "0"), rlist("pods", "0"), func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
		})},
		req:     createReq(podsRes, quotaPod("be", nil, nil)),
		wantErr: `pods "be" is forbidden: exceeded quota: be, requested: pods=1, used: pods=0, limited: pods=0`,
	}, {
		name:   "a service that fits is charged",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req:    createReq(servicesRes, clusterIP.DeepCopy()),
		want: map[string]string{"pods": "1", "cpu": "500m", "memory": "252Mi", "requests.example.com/dongle": "2",
			"services": "2", "services.nodeports": "1", "services.loadbalancers": "0", "count/replicasets.apps": "0"},
	}, {
		name:    "a node port over quota is refused",
		quotas:  []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req:     createReq(servicesRes, nodePort),
		wantErr: `services "np" is forbidden: exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1`,
	}, {
		name:   "a service turned NodePort is charged its node ports",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: servicesRes, Namespace: "ns", Name: "cip",
			Obj: func() *corev1.Service { s := clusterIP.DeepCopy(); s.Spec.Type = corev1.ServiceTypeNodePort; return s }(), Old: clusterIP},
		wantErr: `services "cip" is forbidden: exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1`,
	}, {
		name:   "a ReplicaSet is counted",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", hard, used)},
		req:    createReq(rsRes, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "ns"}}),
		want: map[string]string{"pods": "1", "cpu": "500m", "memory": "252Mi", "requests.example.com/dongle": "2",
			"services": "1", "services.nodeports": "1", "services.loadbalancers": "0", "count/replicasets.apps": "1"},
	}, {
		name:   "what quota does not measure is not looked at",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", rlist("count/limitranges", "0"), nil)},
		req:    createReq(lrRes, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr", Namespace: "ns"}}),
		want:   map[string]string{},
	}, {
		name:   "a dry run is checked, not charged",
		quotas: []*corev1.ResourceQuota{synced("ns", "q", rlist("pods", "2"), rlist("pods", "1"))},
		req: func() *apiserver.AdmissionRequest {
			r := createReq(podsRes, quotaPod("dry", nil, nil))
			r.DryRun = true
			return r
		}(),
		want: map[string]string{"pods": "1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newQuotaStore(tt.quotas, tt.quotas)
			a := &ResourceQuota{Quotas: store, Prefix: quotaPrefix}
			err := a.Admit(context.Background(), tt.req)
			if tt.wantErr != "" {
				if !apierrors.IsForbidden(err) || err.(apierrors.APIStatus).Status().Code != http.StatusForbidden {
					t.Fatalf("want 403, got %v", err)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("message:\n got %s\nwant %s", err, tt.wantErr)
				}
				if diff := cmp.Diff(quantities(tt.quotas[0].Status.Used), store.used("ns", tt.quotas[0].Name)); diff != "" {
					t.Errorf("a refused write was charged (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Admit: %v", err)
			}
			if diff := cmp.Diff(tt.want, store.used("ns", tt.quotas[0].Name)); diff != "" {
				t.Errorf("status.used (-want +got):\n%s", diff)
			}
		})
	}
}

// The charge checks the quota as stored, not as cached: of two writes
// that both fit the cached usage, the second is refused.
func TestResourceQuotaChargeRechecksStored(t *testing.T) {
	q := synced("ns", "q", rlist("pods", "1"), rlist("pods", "0"))
	store := newQuotaStore([]*corev1.ResourceQuota{q}, []*corev1.ResourceQuota{q})
	a := &ResourceQuota{Quotas: store, Prefix: quotaPrefix}
	if err := a.Admit(context.Background(), createReq(podsRes, quotaPod("a", nil, nil))); err != nil {
		t.Fatalf("first pod: %v", err)
	}
	// The cache still shows pods=0.
	err := a.Admit(context.Background(), createReq(podsRes, quotaPod("b", nil, nil)))
	want := `pods "b" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("second pod: got %v, want %s", err, want)
	}
	if got := store.used("ns", "q")["pods"]; got != "1" {
		t.Errorf("pods used = %s, want 1", got)
	}
}

// A charge that keeps losing races gives up with a conflict after
// quotaCharges attempts; one that loses a few succeeds.
func TestResourceQuotaChargeRetriesBounded(t *testing.T) {
	q := synced("ns", "q", rlist("pods", "5"), rlist("pods", "0"))
	for _, tt := range []struct {
		conflicts int
		conflict  bool
	}{{conflicts: quotaCharges - 1}, {conflicts: 100, conflict: true}} {
		store := newQuotaStore([]*corev1.ResourceQuota{q}, []*corev1.ResourceQuota{q})
		store.conflicts = tt.conflicts
		a := &ResourceQuota{Quotas: store, Prefix: quotaPrefix}
		err := a.Admit(context.Background(), createReq(podsRes, quotaPod("p", nil, nil)))
		if tt.conflict != apierrors.IsConflict(err) || (!tt.conflict && err != nil) {
			t.Fatalf("%d lost races: got %v, want conflict %v", tt.conflicts, err, tt.conflict)
		}
	}
}

// Concurrent writes never take usage past the limit.
func TestResourceQuotaConcurrentCharges(t *testing.T) {
	q := synced("ns", "q", rlist("pods", "3"), rlist("pods", "0"))
	store := newQuotaStore([]*corev1.ResourceQuota{q}, []*corev1.ResourceQuota{q})
	a := &ResourceQuota{Quotas: store, Prefix: quotaPrefix}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Admit(context.Background(), createReq(podsRes, quotaPod(string(rune('a'+i)), nil, nil))); err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted != 3 || store.used("ns", "q")["pods"] != "3" {
		t.Fatalf("admitted %d, used %v; want 3 and 3", admitted, store.used("ns", "q"))
	}
}

// When the cache shows no quota, a live read finds one created a moment
// ago; the live answer is reused for liveTTL, then read again.
func TestResourceQuotaLiveLookup(t *testing.T) {
	q := synced("ns", "q", rlist("pods", "0"), rlist("pods", "0"))
	store := newQuotaStore(nil, []*corev1.ResourceQuota{q})
	now := time.Unix(1000, 0)
	a := &ResourceQuota{Quotas: store, Prefix: quotaPrefix, now: func() time.Time { return now }}
	for i := range 3 {
		if err := a.Admit(context.Background(), createReq(podsRes, quotaPod("p", nil, nil))); !apierrors.IsForbidden(err) {
			t.Fatalf("attempt %d: want 403 from the live quota, got %v", i, err)
		}
	}
	if store.liveLists != 1 {
		t.Fatalf("live lists = %d, want 1 within liveTTL", store.liveLists)
	}
	now = now.Add(liveTTL + time.Second)
	_ = a.Admit(context.Background(), createReq(podsRes, quotaPod("p", nil, nil)))
	if store.liveLists != 2 {
		t.Fatalf("live lists = %d, want 2 after liveTTL", store.liveLists)
	}
	// A namespace whose cache shows quotas needs no live read.
	store.cached[quotaPrefix+"ns/q"] = q.DeepCopy()
	now = now.Add(liveTTL + time.Second)
	_ = a.Admit(context.Background(), createReq(podsRes, quotaPod("p", nil, nil)))
	if store.liveLists != 2 {
		t.Fatalf("live lists = %d, want no more with a cached quota", store.liveLists)
	}
}
