package admission

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// ServiceAllocator gives services their cluster IP from the service CIDR
// and their node ports from 30000-32767, and rejects a requested one that
// is taken or out of range (422, upstream's messages).
//
// A candidate is picked from what the services in the watch cache do not
// hold, and then claimed in etcd (Claims): a claim is a compare-and-swap
// that only one owner wins, so several API servers on one etcd never hand
// out the same address, however far behind their caches are; a server
// that loses a candidate picks another. A delete, or an update that drops
// an address or a port, releases the Service's claims; Repair, run beside
// the server, releases the claims that admission could not see through
// (a create that failed after admission) and claims what Services stored
// before claims existed hold. Upstream keeps one allocation bitmap per
// range in etcd instead.
type ServiceAllocator struct {
	Services storage.Interface
	Prefix   string // the services' key prefix
	CIDR     netip.Prefix
	// NodePortBase and NodePortSize give the node port range.
	NodePortBase, NodePortSize int
	// Claims are the claims every API server on the etcd shares. Without
	// them (tests of the range logic) allocation trusts the cache alone
	// and two concurrent creates may get the same address.
	Claims *ServiceClaims
}

// pickTries bounds the candidates one allocation tries to claim before it
// reads every claim into its view, and again after: the server's cache is
// then far behind, or the free part of the range was claimed by other
// servers while trying.
const pickTries = 16

// FirstIP is the first usable address of a CIDR (the kubernetes Service's).
func FirstIP(cidr netip.Prefix) netip.Addr { return cidr.Masked().Addr().Next() }

func (a *ServiceAllocator) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Resource.GroupVersion.Group != "" || req.Resource.Name != "services" || req.Sub != "" {
		return nil
	}
	var old *corev1.Service
	if req.Old != nil {
		old, _ = req.Old.(*corev1.Service)
	}
	switch req.Operation {
	case apiserver.Create, apiserver.Update:
	case apiserver.Delete:
		// Released before the delete is stored: admission sees no
		// later step. A Service with finalizers stays until they are
		// removed (released then, by the update that removes the last);
		// one that a later step keeps after all (a conflict retried, a
		// foreground deletion adding its finalizer) is claimed again
		// by Repair, and in the meantime the other servers' caches
		// still show its addresses as taken.
		if old == nil || req.DryRun || len(old.Finalizers) > 0 {
			return nil
		}
		return a.release(ctx, old, holdings(old))
	default:
		return nil
	}
	svc, ok := req.Obj.(*corev1.Service)
	if !ok {
		return nil
	}
	used, err := a.used(ctx, svc)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	al := &allocation{ServiceAllocator: a, ctx: ctx, owner: svc.Namespace + "/" + svc.Name, used: used, dry: req.DryRun}
	if err := al.allocate(svc, old); err != nil {
		// What this request claimed first is free again. (A claim it
		// found its owner's already, or that was renewed since, stays:
		// a stored Service or a retried request may hold it.)
		if len(al.made) > 0 {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			for _, cl := range al.made {
				_, _ = a.Claims.releaseIfUnchanged(rctx, cl)
			}
		}
		return err
	}
	if old == nil || req.DryRun {
		return nil
	}
	// What the update drops; everything once the update lets the
	// Service be deleted (its last finalizer removed).
	drop := holdings(old)
	if svc.DeletionTimestamp != nil && len(svc.Finalizers) == 0 {
		drop = append(drop, holdings(svc)...)
	} else {
		keep := map[string]bool{}
		for _, n := range holdings(svc) {
			keep[n] = true
		}
		drop = slices.DeleteFunc(drop, func(n string) bool { return keep[n] })
	}
	return a.release(ctx, svc, drop)
}

// allocate fills in and checks svc's cluster IP and node ports.
func (al *allocation) allocate(svc, old *corev1.Service) error {
	var errs field.ErrorList
	ferr, err := al.clusterIP(svc, old)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if ferr != nil {
		errs = append(errs, ferr)
	}
	ferrs, err := al.nodePorts(svc, old)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	errs = append(errs, ferrs...)
	if len(errs) > 0 {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return nil
}

// release releases svc's claims of names.
func (a *ServiceAllocator) release(ctx context.Context, svc *corev1.Service, names []string) error {
	if a.Claims == nil {
		return nil
	}
	owner := svc.Namespace + "/" + svc.Name
	for _, n := range names {
		if err := a.Claims.Release(ctx, n, owner); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	return nil
}

// holdings returns the claim names of the addresses and ports svc holds.
func holdings(svc *corev1.Service) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		if addr, err := netip.ParseAddr(ip); err == nil {
			add(claimClusterIPs + addr.String())
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			add(fmt.Sprintf("%s%d", claimNodePorts, p.NodePort))
		}
	}
	return names
}

// claimName is the claim of a key of the used set: "ip:10.43.0.7" is
// "clusterips/10.43.0.7", "port:30001" is "nodeports/30001"; usedKey is
// the reverse.
func claimName(key string) string {
	if ip, ok := strings.CutPrefix(key, "ip:"); ok {
		return claimClusterIPs + ip
	}
	return claimNodePorts + strings.TrimPrefix(key, "port:")
}

func usedKey(name string) string {
	if ip, ok := strings.CutPrefix(name, claimClusterIPs); ok {
		return "ip:" + ip
	}
	return "port:" + strings.TrimPrefix(name, claimNodePorts)
}

// used returns the addresses and ports held by services other than svc,
// as the watch cache has them: "ip:10.43.0.7" and "port:30001".
func (a *ServiceAllocator) used(ctx context.Context, svc *corev1.Service) (map[string]bool, error) {
	list := &corev1.ServiceList{}
	if err := a.Services.List(ctx, a.Prefix, storage.ListOptions{ResourceVersion: "0"}, list); err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	used := map[string]bool{}
	for i := range list.Items {
		s := &list.Items[i]
		if s.Namespace == svc.Namespace && s.Name == svc.Name {
			continue
		}
		for _, ip := range s.Spec.ClusterIPs {
			used["ip:"+ip] = true
		}
		if s.Spec.ClusterIP != "" {
			used["ip:"+s.Spec.ClusterIP] = true
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				used[fmt.Sprintf("port:%d", p.NodePort)] = true
			}
		}
	}
	return used, nil
}

// allocation is one admission's allocation for owner: what it sees as
// used, and whether it is a dry run (which claims nothing).
type allocation struct {
	*ServiceAllocator
	ctx   context.Context
	owner string
	used  map[string]bool
	dry   bool
	made  []Claim // the claims it created
}

// take claims the address or port of the used-set key for the owner; on
// a dry run it only checks that no other owner holds it. Fails with
// ErrClaimed.
func (al *allocation) take(key string) error {
	if al.Claims == nil {
		return nil
	}
	if !al.dry {
		cl, created, err := al.Claims.claim(al.ctx, claimName(key), al.owner, time.Now())
		if created {
			al.made = append(al.made, cl)
		}
		return err
	}
	holder, err := al.Claims.Holder(al.ctx, claimName(key))
	if err != nil {
		return err
	}
	if holder != "" && holder != al.owner {
		return fmt.Errorf("%s is held by %q: %w", claimName(key), holder, ErrClaimed)
	}
	return nil
}

// takeFree picks a free address or port with pick (which returns a key
// not in the used set) and takes it. A candidate another owner holds is
// marked used and another one picked; after pickTries of them every claim
// is read into the used set once, and as many tries follow. ok is false
// when pick finds nothing free: the range is full. It never loops
// unbounded: a server that keeps losing gets an error.
func (al *allocation) takeFree(pick func(used map[string]bool) (string, bool)) (key string, ok bool, err error) {
	lost := 0
	for round := 0; round < 2; round++ {
		if round == 1 {
			if al.Claims == nil {
				break
			}
			claims, err := al.Claims.List(al.ctx)
			if err != nil {
				return "", false, err
			}
			for _, cl := range claims {
				if cl.Owner != al.owner {
					al.used[usedKey(cl.Name)] = true
				}
			}
		}
		for range pickTries {
			key, ok := pick(al.used)
			if !ok {
				return "", false, nil
			}
			err := al.take(key)
			if err == nil {
				return key, true, nil
			}
			if !errors.Is(err, ErrClaimed) {
				return "", false, err
			}
			al.used[key] = true
			lost++
		}
	}
	return "", false, fmt.Errorf("%d free candidates in a row were claimed by other API servers first; try again", lost)
}

// clusterIP keeps, checks and claims, or picks and claims, svc's cluster
// IP. The error is the server's (etcd), the field error the request's.
func (al *allocation) clusterIP(svc, old *corev1.Service) (*field.Error, error) {
	path := field.NewPath("spec", "clusterIPs").Index(0)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil
	}
	if old != nil && old.Spec.ClusterIP != "" && old.Spec.Type != corev1.ServiceTypeExternalName {
		// Kept from the stored object; validation rejects a change.
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
			svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		}
		return nil, nil
	}
	ip := svc.Spec.ClusterIP
	if ip == "" && len(svc.Spec.ClusterIPs) > 0 {
		ip = svc.Spec.ClusterIPs[0]
	}
	if ip == corev1.ClusterIPNone {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
		return nil, nil
	}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, nil // validation reports the format
		}
		if !al.CIDR.Contains(addr) {
			return field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, al.CIDR)), nil
		}
		allocated := field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip))
		if al.used["ip:"+addr.String()] {
			return allocated, nil
		}
		if err := al.take("ip:" + addr.String()); errors.Is(err, ErrClaimed) {
			return allocated, nil
		} else if err != nil {
			return nil, err
		}
	} else {
		key, ok, err := al.takeFree(func(used map[string]bool) (string, bool) {
			addr, ok := al.freeIP(used)
			return "ip:" + addr.String(), ok
		})
		if err != nil {
			return nil, fmt.Errorf("failed to allocate a serviceIP: %w", err)
		}
		if !ok {
			return field.Invalid(path, "", "failed to allocate a serviceIP: range is full"), nil
		}
		ip = strings.TrimPrefix(key, "ip:")
	}
	al.used["ip:"+ip] = true
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if svc.Spec.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &p
	}
	return nil, nil
}

// freeIP picks a random free address of the CIDR, skipping the network
// address, the first address (the kubernetes Service's, given explicitly)
// and the broadcast address. As upstream, it prefers addresses above a
// static band at the start of the range (16 to 256 addresses, size/16), so
// that well-known addresses such as kube-dns's 10th stay free for explicit
// requests; it takes from the band only when the rest is full.
func (a *ServiceAllocator) freeIP(used map[string]bool) (netip.Addr, bool) {
	base := a.CIDR.Masked().Addr()
	bits := a.CIDR.Addr().BitLen() - a.CIDR.Bits()
	if bits > 20 {
		bits = 20 // a /12 of IPv4 or any IPv6 range: plenty, and bounded
	}
	size := 1 << bits
	if size < 4 {
		return netip.Addr{}, false
	}
	band := min(max(16, size/16), 256)
	if band >= size-1 {
		band = 2
	}
	// [band, size-1) first, then [2, band).
	for _, r := range [][2]int{{band, size - 1}, {2, band}} {
		n := r[1] - r[0]
		if n <= 0 {
			continue
		}
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			addr := addOffset(base, r[0]+(start+i)%n)
			if !used["ip:"+addr.String()] {
				return addr, true
			}
		}
	}
	return netip.Addr{}, false
}

func addOffset(base netip.Addr, off int) netip.Addr {
	n := new(big.Int).SetBytes(base.AsSlice())
	n.Add(n, big.NewInt(int64(off)))
	b := n.Bytes()
	out := make([]byte, len(base.AsSlice()))
	copy(out[len(out)-len(b):], b)
	addr, _ := netip.AddrFromSlice(out)
	if base.Is4() {
		return addr.Unmap()
	}
	return addr
}

// nodePorts keeps, checks and claims, or picks and claims, svc's node
// ports. The error is the server's (etcd), the field errors the request's.
func (al *allocation) nodePorts(svc, old *corev1.Service) (field.ErrorList, error) {
	wants := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.AllocateLoadBalancerNodePorts != nil && !*svc.Spec.AllocateLoadBalancerNodePorts {
		wants = false
	}
	var errs field.ErrorList
	oldPorts := map[string]int32{}
	if old != nil {
		for _, p := range old.Spec.Ports {
			oldPorts[fmt.Sprintf("%s/%d", p.Protocol, p.Port)] = p.NodePort
			if p.NodePort != 0 {
				// Not for another port of the same Service.
				al.used[fmt.Sprintf("port:%d", p.NodePort)] = true
			}
		}
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
		if p.NodePort == 0 {
			if !wants {
				continue
			}
			if np := oldPorts[fmt.Sprintf("%s/%d", p.Protocol, p.Port)]; np != 0 {
				p.NodePort = np
				continue
			}
			key, ok, err := al.takeFree(func(used map[string]bool) (string, bool) {
				port, ok := al.freePort(used)
				return fmt.Sprintf("port:%d", port), ok
			})
			if err != nil {
				return nil, fmt.Errorf("failed to allocate a nodePort: %w", err)
			}
			if !ok {
				errs = append(errs, field.Invalid(path, 0, "failed to allocate a nodePort: range is full"))
				continue
			}
			port, _ := strconv.Atoi(strings.TrimPrefix(key, "port:"))
			p.NodePort = int32(port)
		} else {
			if int(p.NodePort) < al.NodePortBase || int(p.NodePort) >= al.NodePortBase+al.NodePortSize {
				errs = append(errs, field.Invalid(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", al.NodePortBase, al.NodePortBase+al.NodePortSize-1)))
				continue
			}
			mine := false
			for _, np := range oldPorts {
				mine = mine || np == p.NodePort
			}
			key := fmt.Sprintf("port:%d", p.NodePort)
			if !mine {
				allocated := field.Invalid(path, p.NodePort, "provided port is already allocated")
				if al.used[key] {
					errs = append(errs, allocated)
					continue
				}
				if err := al.take(key); errors.Is(err, ErrClaimed) {
					errs = append(errs, allocated)
					continue
				} else if err != nil {
					return nil, fmt.Errorf("failed to allocate nodePort %d: %w", p.NodePort, err)
				}
			}
		}
		al.used[fmt.Sprintf("port:%d", p.NodePort)] = true
	}
	return errs, nil
}

func (a *ServiceAllocator) freePort(used map[string]bool) (int, bool) {
	start := rand.IntN(a.NodePortSize)
	for i := 0; i < a.NodePortSize; i++ {
		port := a.NodePortBase + (start+i)%a.NodePortSize
		if !used[fmt.Sprintf("port:%d", port)] {
			return port, true
		}
	}
	return 0, false
}
