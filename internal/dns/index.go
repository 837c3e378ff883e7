package dns

import (
	"context"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// index is what the server answers from: informer caches of Services,
// EndpointSlices and Namespaces with the indexes a query needs. It keeps
// no copy of its own, so an answer is always the informers' latest state.
type index struct {
	factory    informers.SharedInformerFactory
	services   cache.SharedIndexInformer
	slices     cache.SharedIndexInformer
	namespaces cache.SharedIndexInformer
	// modified is the Unix time of the last change seen: the SOA serial,
	// as CoreDNS's.
	modified atomic.Uint32
}

const (
	byClusterIP = "clusterIP" // Service by each ClusterIP
	byService   = "service"   // EndpointSlice by "namespace/service"
	byAddress   = "address"   // EndpointSlice by each endpoint address
)

func newIndex(client kubernetes.Interface) *index {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields))
	x := &index{
		factory:    f,
		services:   f.Core().V1().Services().Informer(),
		slices:     f.Discovery().V1().EndpointSlices().Informer(),
		namespaces: f.Core().V1().Namespaces().Informer(),
	}
	x.modified.Store(uint32(time.Now().Unix()))
	_ = x.services.AddIndexers(cache.Indexers{byClusterIP: func(obj any) ([]string, error) {
		svc, ok := obj.(*corev1.Service)
		if !ok {
			return nil, nil
		}
		var out []string
		for _, ip := range clusterIPs(svc) {
			out = append(out, ip.String())
		}
		return out, nil
	}})
	_ = x.slices.AddIndexers(cache.Indexers{
		byService: func(obj any) ([]string, error) {
			es, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok || es.Labels[discoveryv1.LabelServiceName] == "" {
				return nil, nil
			}
			return []string{es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]}, nil
		},
		byAddress: func(obj any) ([]string, error) {
			es, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return nil, nil
			}
			var out []string
			for _, ep := range es.Endpoints {
				for _, a := range ep.Addresses {
					if ip, err := netip.ParseAddr(a); err == nil {
						out = append(out, ip.String())
					}
				}
			}
			return out, nil
		},
	})
	touch := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { x.modified.Store(uint32(time.Now().Unix())) },
		UpdateFunc: func(any, any) { x.modified.Store(uint32(time.Now().Unix())) },
		DeleteFunc: func(any) { x.modified.Store(uint32(time.Now().Unix())) },
	}
	for _, inf := range []cache.SharedIndexInformer{x.services, x.slices, x.namespaces} {
		_, _ = inf.AddEventHandler(touch)
	}
	return x
}

// stripManagedFields drops what the server never reads, to keep the caches
// small on a node.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		m.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}

// run starts the informers and reports whether they synced before ctx
// ended. The informers run until ctx ends; shutdown waits for them.
func (x *index) run(ctx context.Context) bool {
	x.factory.StartWithContext(ctx)
	for _, ok := range x.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return false
		}
	}
	return true
}

// shutdown returns once the informers' goroutines have exited; the context
// given to run must have ended.
func (x *index) shutdown() { x.factory.Shutdown() }

func (x *index) service(ns, name string) *corev1.Service {
	obj, ok, err := x.services.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	return obj.(*corev1.Service)
}

func (x *index) namespaceExists(ns string) bool {
	_, ok, err := x.namespaces.GetStore().GetByKey(ns)
	return err == nil && ok
}

func (x *index) servicesByIP(ip netip.Addr) []*corev1.Service {
	objs, _ := x.services.GetIndexer().ByIndex(byClusterIP, ip.String())
	out := make([]*corev1.Service, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Service))
	}
	return out
}

func (x *index) slicesByAddress(ip netip.Addr) []*discoveryv1.EndpointSlice {
	objs, _ := x.slices.GetIndexer().ByIndex(byAddress, ip.String())
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*discoveryv1.EndpointSlice))
	}
	return out
}

// endpoint is one address of a service's endpoints, with the ports of the
// slices it appears in.
type endpoint struct {
	ip    netip.Addr
	label string // the DNS label: the hostname, or the dashed address
	ports []port
}

type port struct {
	name, proto string // proto lower case: "tcp", "udp", "sctp"
	number      int32
}

// endpoints returns the ready endpoints of service ns/name, one per
// address, sorted by address. publishNotReady keeps the not-ready ones
// too (the endpointslice controller already marks them ready for such
// services; this covers slices written by others).
func (x *index) endpoints(ns, name string, publishNotReady bool) []*endpoint {
	objs, _ := x.slices.GetIndexer().ByIndex(byService, ns+"/"+name)
	byIP := map[netip.Addr]*endpoint{}
	for _, o := range objs {
		es := o.(*discoveryv1.EndpointSlice)
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var ports []port
		for _, p := range es.Ports {
			if p.Port == nil {
				continue // "all ports": nothing to put in an SRV record
			}
			pp := port{proto: "tcp", number: *p.Port}
			if p.Name != nil {
				pp.name = *p.Name
			}
			if p.Protocol != nil {
				pp.proto = lower(string(*p.Protocol))
			}
			ports = append(ports, pp)
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready && !publishNotReady {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				e := byIP[ip]
				if e == nil {
					e = &endpoint{ip: ip, label: dashed(ip.String())}
					byIP[ip] = e
				}
				if ep.Hostname != nil && *ep.Hostname != "" {
					e.label = lower(*ep.Hostname)
				}
				e.ports = append(e.ports, ports...)
			}
		}
	}
	out := make([]*endpoint, 0, len(byIP))
	for _, e := range byIP {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ip.Less(out[j].ip) })
	return out
}

// clusterIPs are the service's cluster IPs, none for a headless or
// ExternalName service.
func clusterIPs(svc *corev1.Service) []netip.Addr {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone
}
