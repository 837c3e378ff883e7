package admission

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"sync"
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
// What is taken is read from the services themselves (the watch cache),
// plus what this server handed out in the last minute and may not be
// stored yet; so nothing leaks when a service is deleted. Two API servers
// could hand out the same address at the same instant: upstream keeps a
// bitmap in etcd for that; skiff does not yet (docs/compatibility.md).
type ServiceAllocator struct {
	Services storage.Interface
	Prefix   string // the services' key prefix
	CIDR     netip.Prefix
	// NodePortBase and NodePortSize give the node port range.
	NodePortBase, NodePortSize int

	mu     sync.Mutex
	recent map[string]reservation // "ip:10.43.0.7" or "port:30001"
}

// reservation is an address or port handed out to a service that may not
// be stored yet.
type reservation struct {
	at    time.Time
	owner string // namespace/name
}

// FirstIP is the first usable address of a CIDR (the kubernetes Service's).
func FirstIP(cidr netip.Prefix) netip.Addr { return cidr.Masked().Addr().Next() }

func (a *ServiceAllocator) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Resource.GroupVersion.Group != "" || req.Resource.Name != "services" || req.Sub != "" {
		return nil
	}
	if req.Operation != apiserver.Create && req.Operation != apiserver.Update {
		return nil
	}
	svc, ok := req.Obj.(*corev1.Service)
	if !ok {
		return nil
	}
	var old *corev1.Service
	if req.Old != nil {
		old, _ = req.Old.(*corev1.Service)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	used, err := a.used(ctx, svc)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	var errs field.ErrorList
	if err := a.clusterIP(svc, old, used, req.DryRun); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, a.nodePorts(svc, old, used, req.DryRun)...)
	if len(errs) > 0 {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return nil
}

// used returns the addresses and ports held by services other than svc,
// and those handed out recently.
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
	now := time.Now()
	if a.recent == nil {
		a.recent = map[string]reservation{}
	}
	for k, r := range a.recent {
		if now.Sub(r.at) > time.Minute {
			delete(a.recent, k)
			continue
		}
		if r.owner != svc.Namespace+"/"+svc.Name {
			used[k] = true
		}
	}
	return used, nil
}

func (a *ServiceAllocator) clusterIP(svc, old *corev1.Service, used map[string]bool, dry bool) *field.Error {
	path := field.NewPath("spec", "clusterIPs").Index(0)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if old != nil && old.Spec.ClusterIP != "" && old.Spec.Type != corev1.ServiceTypeExternalName {
		// Kept from the stored object; validation rejects a change.
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
			svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		}
		return nil
	}
	ip := svc.Spec.ClusterIP
	if ip == "" && len(svc.Spec.ClusterIPs) > 0 {
		ip = svc.Spec.ClusterIPs[0]
	}
	if ip == corev1.ClusterIPNone {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
		return nil
	}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return nil // validation reports the format
		}
		if !a.CIDR.Contains(addr) {
			return field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, a.CIDR))
		}
		if used["ip:"+addr.String()] {
			return field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip))
		}
	} else {
		addr, ok := a.freeIP(used)
		if !ok {
			return field.Invalid(path, "", fmt.Sprintf("failed to allocate a serviceIP: range is full"))
		}
		ip = addr.String()
	}
	if !dry {
		a.recent["ip:"+ip] = reservation{at: time.Now(), owner: svc.Namespace + "/" + svc.Name}
	}
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if svc.Spec.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &p
	}
	return nil
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

func (a *ServiceAllocator) nodePorts(svc, old *corev1.Service, used map[string]bool, dry bool) field.ErrorList {
	wants := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.AllocateLoadBalancerNodePorts != nil && !*svc.Spec.AllocateLoadBalancerNodePorts {
		wants = false
	}
	var errs field.ErrorList
	oldPorts := map[string]int32{}
	if old != nil {
		for _, p := range old.Spec.Ports {
			oldPorts[fmt.Sprintf("%s/%d", p.Protocol, p.Port)] = p.NodePort
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
			port, ok := a.freePort(used)
			if !ok {
				errs = append(errs, field.Invalid(path, 0, "failed to allocate a nodePort: range is full"))
				continue
			}
			p.NodePort = int32(port)
		} else {
			if int(p.NodePort) < a.NodePortBase || int(p.NodePort) >= a.NodePortBase+a.NodePortSize {
				errs = append(errs, field.Invalid(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.NodePortBase, a.NodePortBase+a.NodePortSize-1)))
				continue
			}
			mine := false
			for _, np := range oldPorts {
				mine = mine || np == p.NodePort
			}
			if used[fmt.Sprintf("port:%d", p.NodePort)] && !mine {
				errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
				continue
			}
		}
		key := fmt.Sprintf("port:%d", p.NodePort)
		used[key] = true
		if !dry {
			a.recent[key] = reservation{at: time.Now(), owner: svc.Namespace + "/" + svc.Name}
		}
	}
	return errs
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
