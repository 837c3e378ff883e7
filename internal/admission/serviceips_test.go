package admission

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

func TestFreeIPPrefersAboveTheStaticBand(t *testing.T) {
	a := &ServiceAllocator{CIDR: netip.MustParsePrefix("10.43.0.0/24")}
	used := map[string]bool{}
	// The 254 usable addresses but the first: the band (.2-.15) comes last.
	for i := 0; i < 253; i++ {
		ip, ok := a.freeIP(used)
		if !ok {
			t.Fatalf("allocation %d: range full", i)
		}
		last := int(ip.As4()[3])
		if i < 253-14 && last < 16 {
			t.Fatalf("allocation %d took %s from the static band while others were free", i, ip)
		}
		if last < 2 || last == 255 || used["ip:"+ip.String()] {
			t.Fatalf("allocation %d: bad or repeated address %s", i, ip)
		}
		used["ip:"+ip.String()] = true
	}
	if ip, ok := a.freeIP(used); ok {
		t.Fatalf("full range still gave %s", ip)
	}

	small := &ServiceAllocator{CIDR: netip.MustParsePrefix("10.43.0.0/29")}
	if ip, ok := small.freeIP(map[string]bool{}); !ok || ip.As4()[3] < 2 || ip.As4()[3] > 6 {
		t.Fatalf("a /29 gave %s, %v", ip, ok)
	}
}

var servicesR = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "services"}

// apiServer is one API server as the allocator sees it: its allocator,
// over its own view of the services, and the store it writes through.
type apiServer struct {
	alloc *ServiceAllocator
	store storage.Interface
}

// newAPIServer returns an API server on the services under cfg whose view
// is its own watch cache, or, if blind, a view that never shows a service
// (a cache as far behind as can be).
func newAPIServer(t *testing.T, client *clientv3.Client, cfg storage.Config, claims *ServiceClaims, blind bool) *apiServer {
	t.Helper()
	c := storage.NewCacher(storage.NewStore(client, cfg), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("watch cache not ready after 10s")
	}
	var view storage.Interface = c
	if blind {
		view = emptyServices{c}
	}
	return &apiServer{
		alloc: &ServiceAllocator{Services: view, Prefix: cfg.Prefix, CIDR: netip.MustParsePrefix("10.43.0.0/24"),
			NodePortBase: 30000, NodePortSize: 2768, Claims: claims},
		store: c,
	}
}

// emptyServices is a view of the services that lists none.
type emptyServices struct{ storage.Interface }

func (emptyServices) List(context.Context, string, storage.ListOptions, runtime.Object) error {
	return nil
}

func (s *apiServer) key(svc *corev1.Service) string {
	return storage.Key(s.alloc.Prefix, svc.Namespace, svc.Name)
}

// create admits and stores svc, as the API server does.
func (s *apiServer) create(ctx context.Context, svc *corev1.Service, dry bool) error {
	req := &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: servicesR, Namespace: svc.Namespace, Name: svc.Name, Obj: svc, DryRun: dry}
	if err := s.alloc.Admit(ctx, req); err != nil || dry {
		return err
	}
	return s.store.Create(ctx, s.key(svc), svc, svc, 0)
}

// update admits svc over the stored old and stores it.
func (s *apiServer) update(ctx context.Context, old, svc *corev1.Service) error {
	req := &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: servicesR, Namespace: svc.Namespace, Name: svc.Name, Obj: svc, Old: old}
	if err := s.alloc.Admit(ctx, req); err != nil {
		return err
	}
	return s.store.GuaranteedUpdate(ctx, s.key(svc), svc, false, nil, func(runtime.Object) (runtime.Object, error) {
		return svc.DeepCopy(), nil
	})
}

// delete admits the delete of the stored svc and deletes it.
func (s *apiServer) delete(ctx context.Context, svc *corev1.Service) error {
	req := &apiserver.AdmissionRequest{Operation: apiserver.Delete, Resource: servicesR, Namespace: svc.Namespace, Name: svc.Name, Old: svc}
	if err := s.alloc.Admit(ctx, req); err != nil {
		return err
	}
	return s.store.Delete(ctx, s.key(svc), &corev1.Service{}, nil, nil)
}

func nodePortService(name string, ports ...int32) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}}
	for i, np := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprint(i), Protocol: corev1.ProtocolTCP, Port: int32(80 + i), NodePort: np})
	}
	return svc
}

func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("got %v, want 422 with %q", err, msg)
	}
}

func TestServiceAllocatorClaims(t *testing.T) {
	client := storagetest.StartEtcd(t)
	ctx := context.Background()
	claims := newClaims(client)
	s := newAPIServer(t, client, servicesConfig(), claims, false)

	a := nodePortService("a", 0, 0)
	if err := s.create(ctx, a, false); err != nil {
		t.Fatal(err)
	}
	ip, p0, p1 := a.Spec.ClusterIP, a.Spec.Ports[0].NodePort, a.Spec.Ports[1].NodePort
	want := map[string]string{
		"clusterips/" + ip:              "ns/a",
		fmt.Sprintf("nodeports/%d", p0): "ns/a",
		fmt.Sprintf("nodeports/%d", p1): "ns/a",
	}
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after a create (-want +got):\n%s", diff)
	}

	// A retried create of the same Service gets what it claimed.
	again := nodePortService("a", p0, p1)
	again.Spec.ClusterIP = ip
	if err := s.alloc.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: servicesR, Namespace: "ns", Name: "a", Obj: again}); err != nil {
		t.Fatalf("a retried create: %v", err)
	}

	// What another server claimed, and this one's cache does not show.
	if err := claims.Claim(ctx, "clusterips/10.43.0.50", "ns/elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := claims.Claim(ctx, "nodeports/30050", "ns/elsewhere"); err != nil {
		t.Fatal(err)
	}
	// (The second create claims a cluster IP before its port is
	// refused; the refusal releases it again: see the claims below.)
	for _, dry := range []bool{false, true} {
		b := nodePortService("b")
		b.Spec.ClusterIP = "10.43.0.50"
		wantInvalid(t, s.create(ctx, b, dry), "failed to allocate IP 10.43.0.50: provided IP is already allocated")
		wantInvalid(t, s.create(ctx, nodePortService("b", 30050), dry), "provided port is already allocated")
	}

	// A dry run allocates and claims nothing.
	c := nodePortService("c", 0)
	if err := s.create(ctx, c, true); err != nil {
		t.Fatal(err)
	}
	if c.Spec.ClusterIP == "" || c.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("dry run allocated nothing: %+v", c.Spec)
	}
	want["clusterips/10.43.0.50"], want["nodeports/30050"] = "ns/elsewhere", "ns/elsewhere"
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after dry runs (-want +got):\n%s", diff)
	}

	// An update that drops a port, then the node ports, releases them.
	one := a.DeepCopy()
	one.Spec.Ports = one.Spec.Ports[:1]
	if err := s.update(ctx, a, one); err != nil {
		t.Fatal(err)
	}
	delete(want, fmt.Sprintf("nodeports/%d", p1))
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after a port was removed (-want +got):\n%s", diff)
	}
	clusterIP := one.DeepCopy()
	clusterIP.Spec.Type = corev1.ServiceTypeClusterIP
	clusterIP.Spec.Ports[0].NodePort = 0
	if err := s.update(ctx, one, clusterIP); err != nil {
		t.Fatal(err)
	}
	delete(want, fmt.Sprintf("nodeports/%d", p0))
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after NodePort -> ClusterIP (-want +got):\n%s", diff)
	}

	// A delete releases the rest; one held by a finalizer only once the
	// update that removes the last finalizer lets it go.
	if err := s.delete(ctx, clusterIP); err != nil {
		t.Fatal(err)
	}
	delete(want, "clusterips/"+ip)
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after a delete (-want +got):\n%s", diff)
	}
	held := nodePortService("held", 0)
	held.Finalizers = []string{"example.com/hold"}
	if err := s.create(ctx, held, false); err != nil {
		t.Fatal(err)
	}
	req := &apiserver.AdmissionRequest{Operation: apiserver.Delete, Resource: servicesR, Namespace: "ns", Name: "held", Old: held}
	if err := s.alloc.Admit(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := owners(t, claims); got["clusterips/"+held.Spec.ClusterIP] != "ns/held" {
		t.Fatalf("a delete held by a finalizer released the claims: %v", got)
	}
	deleting := held.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	released := deleting.DeepCopy()
	released.Finalizers = nil
	if err := s.alloc.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: servicesR, Namespace: "ns", Name: "held", Obj: released, Old: deleting}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, owners(t, claims)); diff != "" {
		t.Fatalf("claims after the last finalizer went (-want +got):\n%s", diff)
	}
}

// Two API servers whose views never show a service share a small range:
// the claims alone keep them apart, until the range is full.
func TestServiceAllocatorFullRangeAcrossServers(t *testing.T) {
	client := storagetest.StartEtcd(t)
	ctx := context.Background()
	claims := newClaims(client)
	cfg := servicesConfig()
	servers := []*apiServer{newAPIServer(t, client, cfg, claims, true), newAPIServer(t, client, cfg, claims, true)}
	for _, s := range servers {
		s.alloc.CIDR = netip.MustParsePrefix("10.43.0.0/28") // .2-.14: 13 addresses
		s.alloc.NodePortSize = 13
	}
	var wg sync.WaitGroup
	svcs := make([]*corev1.Service, 13)
	for i := range svcs {
		wg.Go(func() {
			svcs[i] = nodePortService(fmt.Sprintf("s%d", i), 0)
			if err := servers[i%2].create(ctx, svcs[i], false); err != nil {
				t.Errorf("service %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	checkUnique(t, svcs)
	wantInvalid(t, servers[0].create(ctx, nodePortService("more"), false), "failed to allocate a serviceIP: range is full")
	more := nodePortService("more", 0)
	more.Spec.ClusterIP = corev1.ClusterIPNone
	wantInvalid(t, servers[1].create(ctx, more, false), "failed to allocate a nodePort: range is full")
}

// checkUnique fails the test if two of svcs have one cluster IP or node
// port.
func checkUnique(t *testing.T, svcs []*corev1.Service) {
	t.Helper()
	seen := map[string]string{}
	for _, s := range svcs {
		if s == nil {
			continue
		}
		for _, n := range holdings(s) {
			if other, dup := seen[n]; dup {
				t.Errorf("%s given to both %s and %s", n, other, s.Name)
			}
			seen[n] = s.Name
		}
	}
}

// Two API servers, each with its own watch cache (behind the other's
// writes by a watch event's latency, or entirely), create services at
// once on one etcd: no address or port is given twice.
func TestServiceAllocatorRace(t *testing.T) {
	for _, blind := range []bool{false, true} {
		t.Run(fmt.Sprintf("blind=%v", blind), func(t *testing.T) {
			client := storagetest.StartEtcd(t)
			ctx := context.Background()
			claims := newClaims(client)
			cfg := servicesConfig()
			servers := []*apiServer{newAPIServer(t, client, cfg, claims, blind), newAPIServer(t, client, cfg, claims, blind)}
			for _, s := range servers {
				s.alloc.CIDR = netip.MustParsePrefix("10.43.0.0/24")
				s.alloc.NodePortSize = 300
			}
			const n, workers = 200, 16
			svcs := make([]*corev1.Service, n)
			next := atomic.Int32{}
			var wg sync.WaitGroup
			for w := range 2 * workers {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= n {
							return
						}
						svc := nodePortService(fmt.Sprintf("s%d", i), 0)
						if i%2 == 0 {
							svc.Spec.Type, svc.Spec.Ports = corev1.ServiceTypeClusterIP, nil
						}
						if err := servers[w%2].create(ctx, svc, false); err != nil {
							t.Errorf("service %d: %v", i, err)
							continue
						}
						svcs[i] = svc
					}
				})
			}
			wg.Wait()
			checkUnique(t, svcs)
		})
	}
}

// A server whose view shows nothing, in a range nearly all claimed by
// another: after losing a few candidates it reads the claims and finds
// what is free.
func TestServiceAllocatorReadsClaimsWhenBehind(t *testing.T) {
	client := storagetest.StartEtcd(t)
	ctx := context.Background()
	claims := newClaims(client)
	s := newAPIServer(t, client, servicesConfig(), claims, true)
	free := map[string]bool{"10.43.0.3": true, "10.43.0.100": true, "10.43.0.254": true}
	for i := 2; i < 255; i++ {
		if ip := fmt.Sprintf("10.43.0.%d", i); !free[ip] {
			if err := claims.Claim(ctx, "clusterips/"+ip, "ns/other"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range len(free) {
		svc := nodePortService(fmt.Sprintf("s%d", i))
		if err := s.create(ctx, svc, false); err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		if !free[svc.Spec.ClusterIP] {
			t.Fatalf("service %d got %s, which was claimed", i, svc.Spec.ClusterIP)
		}
		delete(free, svc.Spec.ClusterIP)
	}
	wantInvalid(t, s.create(ctx, nodePortService("full"), false), "failed to allocate a serviceIP: range is full")
}
