package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// The endpoints of the kubernetes Service, default/kubernetes, are the
// API servers that are alive, as upstream's "lease" endpoint reconciler
// (pkg/controlplane/reconcilers/lease.go, the default since 1.11) keeps
// them:
//
//   - every server holds an etcd key apiServerLeasePrefix+"<ip>:<port>"
//     ("10.0.0.1:6443" its value too) attached to an etcd lease of
//     apiServerLeaseTTL, which the etcd client keeps alive (every TTL/3);
//   - every server sets the Endpoints and the EndpointSlice "kubernetes"
//     to the addresses those keys list, sorted, at start, every
//     apiServerEndpointsResync, and at once when a key comes or goes (a
//     watch on the prefix); it writes only when they differ, with
//     optimistic concurrency (a Conflict reads the keys and the object
//     again). All servers compute the same list from the same keys, so
//     they converge;
//   - a server is published once its /readyz answers ok (as upstream's;
//     the bootstrap objects are part of readiness, namespaces included);
//     until then a key that a former run of it left (killed, restarted
//     within the TTL) is deleted and its address taken out;
//   - a server stopping gracefully deletes its key and writes the list
//     without itself before it returns; a server that dies leaves with
//     its key, when the etcd lease expires: at most apiServerLeaseTTL
//     after its last keep-alive, which the others' watch sees at once
//     (etcd's lessor checks expiry every 500ms; after an etcd leader
//     change it extends every lease by one election timeout). Should the
//     watch be broken, the resync finds it apiServerEndpointsResync later.
//
// An etcd key with a TTL lease, not a coordination.k8s.io Lease, as
// upstream: expiry is etcd's, so no server has to judge another's
// renewTime against its own clock, and no object that users list or
// could edit decides which addresses clients are sent to. Upstream
// renews by rewriting its key every 10s with a 15s TTL and polls every
// 10s, so a dead server can stay listed 25s; skiff's keep-alive and watch
// make that the TTL, 10s (10.5s with etcd's expiry check), and 15s at
// worst should the watch be broken.
//
// A server whose address may not be an endpoint (loopback, link-local,
// unspecified: validation refuses them, as upstream's does) holds no key
// and writes nothing, and an empty list never erases the endpoints (the
// last server to stop leaves its address, as upstream's does), so a
// cluster whose servers are all bound to 127.0.0.1 has no kubernetes
// Endpoints, as before.
//
// Each server also keeps its identity Lease in kube-system, as upstream's
// APIServerIdentity: "apiserver-<hash>" labelled
// apiserver.kubernetes.io/identity=kube-apiserver, renewed every 10s for
// 3600s, those unrenewed past their duration deleted by every server at
// start and hourly, so that
// `kubectl get leases -n kube-system -l apiserver.kubernetes.io/identity=kube-apiserver`
// lists the servers. Unlike upstream, the hash is of the hostname and the
// server's address and port, not of the hostname alone (several skiff
// servers share a machine in tests), and a server stopping gracefully
// deletes its Lease (docs/compatibility.md).
const (
	apiServerLeasePrefix     = "/registry/skiff.io/apiserverleases/"
	apiServerLeaseTTL        = 10 * time.Second
	apiServerEndpointsResync = 5 * time.Second

	identityLeaseNamespace = "kube-system"
	identityLeaseLabel     = "apiserver.kubernetes.io/identity"
	identityLeaseValue     = "kube-apiserver"
	identityLeaseRenew     = 10 * time.Second
	identityLeaseDuration  = 3600 * time.Second
	identityLeaseGC        = time.Hour

	// apiReadyPoll is how often /readyz is asked until it answers ok.
	apiReadyPoll = 100 * time.Millisecond
	// apiEndpointsStopTimeout bounds the clean-up when ctx ends.
	apiEndpointsStopTimeout = 5 * time.Second

	kubernetesServiceName   = "kubernetes"
	kubernetesEndpointsPort = "https"
	// kubernetesSliceManager is the EndpointSlice's managed-by label:
	// the endpointslice controller leaves slices of other managers alone.
	kubernetesSliceManager = "skiff-apiserver"
	// labelSkipMirror: these Endpoints have their EndpointSlice already,
	// an EndpointSlice mirroring controller must not make another (upstream
	// sets it on them too).
	labelSkipMirror = "endpointslice.kubernetes.io/skip-mirror"
)

// runAPIEndpoints keeps this server, reachable at addr:port, in the
// kubernetes Service's endpoints while ctx lasts, and its identity Lease
// in kube-system (see above). It blocks until ctx ends, then deletes its
// key and its Lease and writes the endpoints without it (bounded by
// apiEndpointsStopTimeout), and returns. Failures are logged and retried;
// the error is for an address it cannot run with.
func runAPIEndpoints(ctx context.Context, client *clientv3.Client, cs kubernetes.Interface, addr netip.Addr, port int, lg *slog.Logger) error {
	if !addr.IsValid() || port <= 0 || port > 65535 {
		return fmt.Errorf("kubernetes endpoints: invalid address %s port %d", addr, port)
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("kubernetes endpoints: hostname: %w", err)
	}
	return newAPIEndpoints(client, cs, netip.AddrPortFrom(addr.Unmap(), uint16(port)), host, lg).run(ctx)
}

// apiEndpoints is one server's part in keeping the kubernetes Service's
// endpoints and the API servers' identity Leases. Its methods run on the
// goroutine of run.
type apiEndpoints struct {
	etcd   *clientv3.Client
	client kubernetes.Interface
	self   netip.AddrPort
	// publish is whether self may be an endpoint address.
	publish bool
	key     string
	lg      *slog.Logger

	// The periods: the constants above, shorter in tests.
	ttl, resync, stopTimeout                    time.Duration
	identityRenew, identityDuration, identityGC time.Duration

	hostname, identityName, identityHolder string

	// The etcd lease that self's key is attached to (0: none), and its
	// keep-alive.
	leaseID       clientv3.LeaseID
	stopKeepAlive context.CancelFunc
	keepAlive     <-chan *clientv3.LeaseKeepAliveResponse

	// ready is whether /readyz has answered ok: this server is
	// published from then on, as upstream's is. staleRemoved is whether
	// a key left by a run that did not stop gracefully has been looked for.
	ready, staleRemoved bool
	warnedMixed         bool
	// passes counts the endpoint passes run (tests wait on it).
	passes atomic.Int64
}

func newAPIEndpoints(client *clientv3.Client, cs kubernetes.Interface, self netip.AddrPort, hostname string, lg *slog.Logger) *apiEndpoints {
	sum := sha256.Sum256([]byte(hostname + "/" + self.String()))
	name := "apiserver-" + hex.EncodeToString(sum[:13])
	return &apiEndpoints{
		etcd: client, client: cs, self: self, publish: endpointAddress(self.Addr()),
		key: apiServerLeasePrefix + self.String(), lg: lg.With("component", "kubernetes-endpoints"),
		ttl: apiServerLeaseTTL, resync: apiServerEndpointsResync, stopTimeout: apiEndpointsStopTimeout,
		identityRenew: identityLeaseRenew, identityDuration: identityLeaseDuration, identityGC: identityLeaseGC,
		hostname: hostname, identityName: name, identityHolder: name + "_" + uuid.NewString(),
	}
}

// endpointAddress is whether a may be an endpoint address: validation
// refuses the unspecified, loopback and link-local ones.
func endpointAddress(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() && !a.IsMulticast()
}

func (a *apiEndpoints) run(ctx context.Context) error {
	if !a.publish {
		a.lg.Info("not publishing an endpoint for the kubernetes Service: the address may not be one", "address", a.self.Addr())
	}
	defer a.stop(ctx)
	var (
		events  clientv3.WatchChan
		backoff time.Duration
	)
	// pass asks /readyz until it answers ok, then runs the endpoint
	// passes; identity and gc start once the server is ready (the
	// bootstrap, kube-system included, is part of readiness).
	pass := time.NewTimer(0)
	defer pass.Stop()
	identity := time.NewTimer(time.Hour)
	identity.Stop()
	gc := time.NewTimer(time.Hour)
	gc.Stop()
	defer identity.Stop()
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-a.keepAlive:
			if ctx.Err() != nil {
				return nil // the keep-alive ended with ctx
			}
			if !ok {
				a.lg.Warn("etcd lease of this API server lost: taking a new one", "key", a.key)
				a.dropLease()
				pass.Reset(0)
			}
			continue
		case resp, ok := <-events:
			if !ok || resp.Canceled {
				// Watched again by the next pass; meanwhile the
				// resync stands in.
				events = nil
				continue
			}
		case <-pass.C:
		case <-identity.C:
			if err := a.renewIdentity(ctx); err != nil && ctx.Err() == nil {
				a.lg.Warn("API server identity Lease not renewed", "lease", a.identityName, "err", err)
			}
			identity.Reset(a.identityRenew)
			continue
		case <-gc.C:
			if err := a.collectIdentities(ctx); err != nil && ctx.Err() == nil {
				a.lg.Warn("expired API server identity Leases not deleted", "err", err)
			}
			gc.Reset(a.identityGC)
			continue
		}
		if !a.ready {
			if a.publish && !a.staleRemoved {
				a.staleRemoved = a.removeStale(ctx)
			}
			if !a.apiReady(ctx) {
				pass.Reset(apiReadyPoll)
				continue
			}
			a.ready = true
			identity.Reset(0)
			gc.Reset(0)
		}
		if !a.publish {
			continue // and no more passes
		}
		if events == nil {
			events = a.etcd.Watch(clientv3.WithRequireLeader(ctx), apiServerLeasePrefix, clientv3.WithPrefix())
		}
		err := a.sync(ctx, false)
		a.passes.Add(1)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			backoff = min(max(2*backoff, 200*time.Millisecond), a.resync)
			if apierrors.IsConflict(err) {
				// Servers writing at once: the next pass agrees.
				a.lg.Debug("kubernetes Service endpoints not reconciled", "err", err, "retry-in", backoff)
			} else {
				a.lg.Warn("kubernetes Service endpoints not reconciled", "err", err, "retry-in", backoff)
			}
			pass.Reset(backoff)
		default:
			backoff = 0
			pass.Reset(a.resync)
		}
	}
}

// stop is the graceful end: this server's key goes, the endpoints are
// written without it, its identity Lease goes.
func (a *apiEndpoints) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.stopTimeout)
	defer cancel()
	if a.publish {
		if _, err := a.etcd.Delete(ctx, a.key); err != nil {
			a.lg.Warn("etcd key of this API server not deleted: it expires with its lease", "key", a.key, "err", err)
		}
		if a.leaseID != 0 {
			_, _ = a.etcd.Revoke(ctx, a.leaseID)
		}
		a.dropLease()
		if err := a.sync(ctx, true); err != nil {
			a.lg.Warn("kubernetes Service endpoints not updated on stop", "err", err)
		} else {
			a.lg.Info("kubernetes Service endpoints written without this API server", "address", a.self)
		}
	}
	if err := a.deleteIdentity(ctx); err != nil {
		a.lg.Warn("API server identity Lease not deleted on stop", "lease", a.identityName, "err", err)
	}
}

// removeStale deletes the key that a former run of this server left if
// it did not stop gracefully, and writes the endpoints without it: it is
// not ready yet. It says whether it could look.
func (a *apiEndpoints) removeStale(ctx context.Context) bool {
	resp, err := a.etcd.Delete(ctx, a.key)
	if err != nil {
		return false
	}
	if resp.Deleted > 0 {
		a.lg.Info("removing the address a former run of this server left in the kubernetes Service endpoints until it is ready", "address", a.self)
		if err := a.sync(ctx, true); err != nil {
			a.lg.Warn("kubernetes Service endpoints not reconciled", "err", err)
		}
	}
	return true
}

// apiReady is whether the API server's /readyz answers ok.
func (a *apiEndpoints) apiReady(ctx context.Context) bool {
	var code int
	a.client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
	return code == http.StatusOK
}

// acquire takes a new etcd lease, attaches this server's key to it and
// keeps it alive.
func (a *apiEndpoints) acquire(ctx context.Context) error {
	g, err := a.etcd.Grant(ctx, int64((a.ttl+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("etcd lease: %w", err)
	}
	if _, err := a.etcd.Put(ctx, a.key, a.self.String(), clientv3.WithLease(g.ID)); err != nil {
		_, _ = a.etcd.Revoke(ctx, g.ID)
		return fmt.Errorf("etcd key %s: %w", a.key, err)
	}
	kaCtx, stop := context.WithCancel(ctx)
	ka, err := a.etcd.KeepAlive(kaCtx, g.ID)
	if err != nil {
		stop()
		_, _ = a.etcd.Revoke(ctx, g.ID)
		return fmt.Errorf("etcd lease keep-alive: %w", err)
	}
	a.leaseID, a.stopKeepAlive, a.keepAlive = g.ID, stop, ka
	return nil
}

func (a *apiEndpoints) dropLease() {
	if a.stopKeepAlive != nil {
		a.stopKeepAlive()
	}
	a.leaseID, a.stopKeepAlive, a.keepAlive = 0, nil, nil
}

// sync sets the Endpoints and the EndpointSlice to the live servers:
// those with a key, this one included unless stopping (its key is put
// back if it went missing). A Conflict starts over from the keys.
func (a *apiEndpoints) sync(ctx context.Context, stopping bool) error {
	if !stopping && a.leaseID == 0 {
		if err := a.acquire(ctx); err != nil {
			return err
		}
	}
	return retry.RetryOnConflict(conflictBackoff, func() error {
		live, err := a.liveServers(ctx, stopping)
		if err != nil {
			return err
		}
		subsets := kubernetesSubsets(live)
		if len(subsets) == 0 {
			// Only while stopping, or if every key is unusable: an
			// empty list never erases the endpoints (upstream refuses
			// to as well).
			return nil
		}
		if err := a.writeEndpoints(ctx, subsets); err != nil {
			return err
		}
		return a.writeSlice(ctx, subsets)
	})
}

// conflictBackoff spreads the servers that conflicted: with full jitter
// they do not meet again at the same instant.
var conflictBackoff = wait.Backoff{Steps: 6, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 1}

// liveServers lists the servers' keys.
func (a *apiEndpoints) liveServers(ctx context.Context, stopping bool) ([]netip.AddrPort, error) {
	resp, err := a.etcd.Get(ctx, apiServerLeasePrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing the API servers' etcd keys: %w", err)
	}
	var live []netip.AddrPort
	self := false
	for _, kv := range resp.Kvs {
		ap, err := netip.ParseAddrPort(string(kv.Value))
		if err != nil {
			a.lg.Warn("unreadable API server etcd key ignored", "key", string(kv.Key), "value", string(kv.Value))
			continue
		}
		if string(kv.Key) == a.key {
			if stopping {
				continue
			}
			self = true
		}
		live = append(live, ap)
	}
	if !stopping && !self {
		// Deleted from under us (or expired a moment before the
		// keep-alive says so): put it back on the lease we hold.
		if a.leaseID == 0 {
			return nil, errors.New("no etcd lease held")
		}
		if _, err := a.etcd.Put(ctx, a.key, a.self.String(), clientv3.WithLease(a.leaseID)); err != nil {
			a.dropLease()
			return nil, fmt.Errorf("etcd key %s: %w", a.key, err)
		}
		live = append(live, a.self)
	}
	return live, nil
}

// kubernetesSubsets are the Endpoints' subsets for the servers live: one
// per port (all servers normally share one), ports ascending, addresses
// sorted; those that may not be endpoints are left out. The same live
// set gives the same subsets in every server.
func kubernetesSubsets(live []netip.AddrPort) []corev1.EndpointSubset {
	byPort := map[uint16][]netip.Addr{}
	for _, ap := range live {
		if addr := ap.Addr().Unmap(); endpointAddress(addr) && ap.Port() != 0 {
			byPort[ap.Port()] = append(byPort[ap.Port()], addr)
		}
	}
	var subsets []corev1.EndpointSubset
	for _, port := range slices.Sorted(maps.Keys(byPort)) {
		addrs := byPort[port]
		slices.SortFunc(addrs, netip.Addr.Compare)
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: kubernetesEndpointsPort, Port: int32(port), Protocol: corev1.ProtocolTCP}}}
		for _, addr := range slices.Compact(addrs) {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: addr.String()})
		}
		subsets = append(subsets, ss)
	}
	return subsets
}

// kubernetesSlice is the EndpointSlice's content for subsets (not
// empty): an EndpointSlice has one port list and one address family, so
// it holds the first subset's addresses of the first one's family; the
// others (servers on another port, or of both families) are in the
// Endpoints only. mixed says whether any were left out.
func kubernetesSlice(subsets []corev1.EndpointSubset) (addrType discoveryv1.AddressType, eps []discoveryv1.Endpoint, ports []discoveryv1.EndpointPort, mixed bool) {
	ss := subsets[0]
	addrType = discoveryv1.AddressTypeIPv4
	if first, err := netip.ParseAddr(ss.Addresses[0].IP); err == nil && first.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	mixed = len(subsets) > 1
	for _, ea := range ss.Addresses {
		if addr, _ := netip.ParseAddr(ea.IP); addr.Is6() != (addrType == discoveryv1.AddressTypeIPv6) {
			mixed = true
			continue
		}
		ready := true
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ea.IP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	p := ss.Ports[0]
	name, port, proto := p.Name, p.Port, p.Protocol
	return addrType, eps, []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}}, mixed
}

// endpointsLabels are the labels the kubernetes Endpoints carry.
func endpointsLabels() map[string]string {
	return map[string]string{"component": "apiserver", "provider": "kubernetes", labelSkipMirror: "true"}
}

// withLabels sets want's labels on have (a copy), keeping the others, and
// says whether that changed anything.
func withLabels(have, want map[string]string) (map[string]string, bool) {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	changed := false
	for k, v := range want {
		if out[k] != v {
			out[k], changed = v, true
		}
	}
	return out, changed
}

func (a *apiEndpoints) writeEndpoints(ctx context.Context, subsets []corev1.EndpointSubset) error {
	c := a.client.CoreV1().Endpoints(metav1.NamespaceDefault)
	have, err := c.Get(ctx, kubernetesServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		ep := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: kubernetesServiceName, Namespace: metav1.NamespaceDefault, Labels: endpointsLabels()},
			Subsets:    subsets,
		}
		if _, err := c.Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("endpoints"), kubernetesServiceName, err) // read it and compare
			}
			return fmt.Errorf("endpoints kubernetes: %w", err)
		}
		a.lg.Info("kubernetes Service endpoints set", "subsets", subsetsString(subsets))
		return nil
	}
	if err != nil {
		return fmt.Errorf("endpoints kubernetes: %w", err)
	}
	labels, relabelled := withLabels(have.Labels, endpointsLabels())
	if !relabelled && apiequality.Semantic.DeepEqual(have.Subsets, subsets) {
		return nil
	}
	before := subsetsString(have.Subsets)
	have.Labels, have.Subsets = labels, subsets
	if _, err := c.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return err
		}
		return fmt.Errorf("endpoints kubernetes: %w", err)
	}
	a.lg.Info("kubernetes Service endpoints set", "subsets", subsetsString(subsets), "were", before)
	return nil
}

func (a *apiEndpoints) writeSlice(ctx context.Context, subsets []corev1.EndpointSubset) error {
	addrType, eps, ports, mixed := kubernetesSlice(subsets)
	if mixed && !a.warnedMixed {
		a.warnedMixed = true
		a.lg.Warn("API servers differ in port or address family: the EndpointSlice kubernetes lists only those of the first port and family, the Endpoints list all", "subsets", subsetsString(subsets))
	}
	a.warnedMixed = a.warnedMixed && mixed // warned again when it comes back
	labels := map[string]string{discoveryv1.LabelServiceName: kubernetesServiceName, discoveryv1.LabelManagedBy: kubernetesSliceManager}
	c := a.client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	want := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: kubernetesServiceName, Namespace: metav1.NamespaceDefault, Labels: labels},
		AddressType: addrType, Endpoints: eps, Ports: ports,
	}
	have, err := c.Get(ctx, kubernetesServiceName, metav1.GetOptions{})
	switch {
	case err == nil && have.AddressType != addrType:
		// The address type cannot change: the slice is made again.
		pre := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &have.ResourceVersion}}
		if err := c.Delete(ctx, kubernetesServiceName, pre); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("endpointslice kubernetes: %w", err)
		}
		fallthrough
	case apierrors.IsNotFound(err):
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(discoveryv1.Resource("endpointslices"), kubernetesServiceName, err)
			}
			return fmt.Errorf("endpointslice kubernetes: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("endpointslice kubernetes: %w", err)
	}
	merged, relabelled := withLabels(have.Labels, labels)
	if !relabelled && apiequality.Semantic.DeepEqual(have.Endpoints, eps) && apiequality.Semantic.DeepEqual(have.Ports, ports) {
		return nil
	}
	have.Labels, have.Endpoints, have.Ports = merged, eps, ports
	if _, err := c.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return err
		}
		return fmt.Errorf("endpointslice kubernetes: %w", err)
	}
	return nil
}

// subsetsString is subsets for the log: "10.0.0.1,10.0.0.2:6443".
func subsetsString(subsets []corev1.EndpointSubset) string {
	var parts []string
	for _, ss := range subsets {
		var ips []string
		for _, ea := range ss.Addresses {
			ips = append(ips, ea.IP)
		}
		var ports []string
		for _, p := range ss.Ports {
			ports = append(ports, fmt.Sprint(p.Port))
		}
		parts = append(parts, strings.Join(ips, ",")+":"+strings.Join(ports, ","))
	}
	return strings.Join(parts, " ")
}

// renewIdentity creates or renews this server's identity Lease.
func (a *apiEndpoints) renewIdentity(ctx context.Context) error {
	c := a.client.CoordinationV1().Leases(identityLeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	seconds := int32(a.identityDuration / time.Second)
	labels := map[string]string{identityLeaseLabel: identityLeaseValue}
	if len(validation.IsValidLabelValue(a.hostname)) == 0 {
		labels[corev1.LabelHostname] = a.hostname // a long FQDN cannot be a label value
	}
	have, err := c.Get(ctx, a.identityName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.identityName, Namespace: identityLeaseNamespace, Labels: labels},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &a.identityHolder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
		}
		_, err = c.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	have.Labels, _ = withLabels(have.Labels, labels)
	if have.Spec.HolderIdentity == nil || *have.Spec.HolderIdentity != a.identityHolder {
		// A former run of this server held it.
		have.Spec.HolderIdentity, have.Spec.AcquireTime = &a.identityHolder, &now
	}
	have.Spec.LeaseDurationSeconds, have.Spec.RenewTime = &seconds, &now
	_, err = c.Update(ctx, have, metav1.UpdateOptions{})
	return err
}

// collectIdentities deletes the identity Leases not renewed within their
// duration: servers that are gone.
func (a *apiEndpoints) collectIdentities(ctx context.Context) error {
	c := a.client.CoordinationV1().Leases(identityLeaseNamespace)
	list, err := c.List(ctx, metav1.ListOptions{LabelSelector: identityLeaseLabel + "=" + identityLeaseValue})
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range list.Items {
		if l.Name == a.identityName || !identityExpired(&l, time.Now()) {
			continue
		}
		pre := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}}
		if err := c.Delete(ctx, l.Name, pre); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, err)
			continue
		}
		a.lg.Info("deleted the identity Lease of an API server gone", "lease", l.Name, "holder", ptrString(l.Spec.HolderIdentity))
	}
	return errors.Join(errs...)
}

func identityExpired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second).Before(now)
}

// deleteIdentity deletes this server's identity Lease if this run holds
// it.
func (a *apiEndpoints) deleteIdentity(ctx context.Context) error {
	c := a.client.CoordinationV1().Leases(identityLeaseNamespace)
	have, err := c.Get(ctx, a.identityName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ptrString(have.Spec.HolderIdentity) != a.identityHolder {
		return nil
	}
	pre := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &have.ResourceVersion}}
	if err := c.Delete(ctx, a.identityName, pre); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
