package dns

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics under CoreDNS's names,
// labels, help strings and buckets (plugin/metrics/vars and
// plugin/pkg/proxy of CoreDNS 1.11 and 1.12, the versions Kubernetes
// ships), so that CoreDNS's dashboards and alerts carry over:
//
//	coredns_dns_requests_total{server, zone, view, proto, family, type}
//	coredns_dns_do_requests_total{server, zone, view}
//	coredns_dns_request_duration_seconds{server, zone, view}
//	coredns_dns_request_size_bytes{server, zone, view, proto}
//	coredns_dns_response_size_bytes{server, zone, view, proto}
//	coredns_dns_responses_total{server, zone, view, rcode, plugin}
//	coredns_panics_total
//	coredns_proxy_request_duration_seconds{proxy_name="forward", to, rcode}
//
// and, for dashboards written before CoreDNS 1.11 folded them into the
// last one, coredns_forward_requests_total{to},
// coredns_forward_responses_total{rcode, to} and
// coredns_forward_request_duration_seconds{to, rcode}.
//
// The labels are CoreDNS's for a Corefile with one server block for the
// cluster domain and one for ".": zone is the cluster domain
// ("cluster.local.") for names in it, "." for the rest (forwarded names
// and the PTR names of cluster addresses), "dropped" for what no plugin
// takes and for the SERVFAIL after a panic; plugin is "kubernetes" or "forward" for the one
// that answered, "" when the server wrote an error itself (SERVFAIL before
// the caches are filled or when no upstream answered); view is always "";
// type is one of CoreDNS's common query types or "other"; to is an
// upstream's host:port. No label holds a query name. (CoreDNS's README
// lists a type label on the request duration; its code, which this
// follows, has none.)
type metrics struct {
	requests     *prometheus.CounterVec
	do           *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	requestSize  *prometheus.HistogramVec
	responseSize *prometheus.HistogramVec
	responses    *prometheus.CounterVec
	panics       prometheus.Counter

	proxyDuration    *prometheus.HistogramVec
	forwardRequests  *prometheus.CounterVec
	forwardResponses *prometheus.CounterVec
	forwardDuration  *prometheus.HistogramVec
}

// timeBuckets are CoreDNS's plugin.TimeBuckets: 0.25ms to ~8s.
var timeBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

// sizeBuckets are CoreDNS's for request and response sizes.
var sizeBuckets = []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3}

// newMetrics creates the server's metrics for reg (register registers
// them); nil reg means no metrics. Each server has its own collectors, so
// that several nodes in one process (tests) each register on their own
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coredns_dns_requests_total", Help: "Counter of DNS requests made per zone, protocol and family.",
		}, []string{"server", "zone", "view", "proto", "family", "type"}),
		do: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coredns_dns_do_requests_total", Help: "Counter of DNS requests with DO bit set per zone.",
		}, []string{"server", "zone", "view"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coredns_dns_request_duration_seconds", Help: "Histogram of the time (in seconds) each request took per zone.",
			Buckets: timeBuckets,
		}, []string{"server", "zone", "view"}),
		requestSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coredns_dns_request_size_bytes", Help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
			Buckets: sizeBuckets,
		}, []string{"server", "zone", "view", "proto"}),
		responseSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coredns_dns_response_size_bytes", Help: "Size of the returned response in bytes.",
			Buckets: sizeBuckets,
		}, []string{"server", "zone", "view", "proto"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coredns_dns_responses_total", Help: "Counter of response status codes.",
		}, []string{"server", "zone", "view", "rcode", "plugin"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coredns_panics_total", Help: "A metrics that counts the number of panics.",
		}),
		proxyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coredns_proxy_request_duration_seconds", Help: "Histogram of the time each request took.",
			Buckets: timeBuckets,
		}, []string{"proxy_name", "to", "rcode"}),
		forwardRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coredns_forward_requests_total", Help: "Counter of requests made per upstream.",
		}, []string{"to"}),
		forwardResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coredns_forward_responses_total", Help: "Counter of responses received per upstream.",
		}, []string{"rcode", "to"}),
		forwardDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coredns_forward_request_duration_seconds", Help: "Histogram of the time each request took.",
			Buckets: timeBuckets,
		}, []string{"to", "rcode"}),
	}
}

// register registers m on reg, all of it or, on error, none of it.
func (m *metrics) register(reg prometheus.Registerer) error {
	if m == nil {
		return nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{
		m.requests, m.do, m.duration, m.requestSize, m.responseSize, m.responses, m.panics,
		m.proxyDuration, m.forwardRequests, m.forwardResponses, m.forwardDuration,
	} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return fmt.Errorf("dns: metrics: %w", err)
		}
		done = append(done, c)
	}
	return nil
}

// children holds the children of a metric vector for a small, fixed set
// of label value combinations, numbered from 0, each made by with on first
// use and kept: WithLabelValues hashes every label value on every call,
// which the query path should not pay, and making all of them up front
// would export series for combinations never seen (CoreDNS exports a
// series from its first query on).
type children[T any] struct {
	slots []atomic.Pointer[T]
	with  func(i int) T
}

func newChildren[T any](n int, with func(i int) T) children[T] {
	return children[T]{slots: make([]atomic.Pointer[T], n), with: with}
}

func (c *children[T]) get(i int) T {
	if p := c.slots[i].Load(); p != nil {
		return *p
	}
	v := c.with(i) // the same child for the same labels: a race is harmless
	c.slots[i].Store(&v)
	return v
}

// origin is the part of CoreDNS's plugin chain that would have written an
// answer: it gives the zone and plugin labels.
type origin uint8

const (
	fromServer        origin = iota // a query no plugin takes: zone "dropped"
	fromClusterError                // the cluster zone; the server wrote an error
	fromKubernetes                  // the kubernetes plugin in the cluster zone
	fromReverse                     // the kubernetes plugin answering a PTR under "."
	fromForward                     // the forward plugin under "."
	fromForwardFailed               // "."; no upstream answered, the server wrote SERVFAIL
)

// Indexes of the zone, plugin, proto and family label values.
const (
	zoneDropped, zoneCluster, zoneRoot, numZones = 0, 1, 2, 3
	pluginNone, pluginKubernetes, pluginForward  = 0, 1, 2
	numPlugins                                   = 3
	protoUDP, protoTCP, numProtos                = 0, 1, 2
	familyIPv4, familyIPv6, numFamilies          = 0, 1, 2
)

var (
	pluginNames = [numPlugins]string{"", "kubernetes", "forward"}
	protoNames  = [numProtos]string{"udp", "tcp"}
	familyNames = [numFamilies]string{"1", "2"} // CoreDNS's: address family numbers
)

func (o origin) zone() int {
	switch o {
	case fromServer:
		return zoneDropped
	case fromClusterError, fromKubernetes:
		return zoneCluster
	}
	return zoneRoot
}

func (o origin) plugin() int {
	switch o {
	case fromKubernetes, fromReverse:
		return pluginKubernetes
	case fromForward:
		return pluginForward
	}
	return pluginNone
}

// qtypes are the query types CoreDNS counts by name (its monitorType);
// the rest count as "other". The common ones come first: qtypeIndex looks
// them up in order.
var qtypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypePTR, dns.TypeSRV, dns.TypeCNAME, dns.TypeTXT, dns.TypeHTTPS,
	dns.TypeSOA, dns.TypeNS, dns.TypeMX, dns.TypeDNSKEY, dns.TypeDS, dns.TypeNSEC3, dns.TypeNSEC,
	dns.TypeRRSIG, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY,
}

const numQtypes = len(qtypes) + 1 // and "other"

func qtypeIndex(t uint16) int {
	for i, q := range qtypes {
		if q == t {
			return i
		}
	}
	return len(qtypes)
}

func qtypeName(i int) string {
	if i < len(qtypes) {
		return dns.TypeToString[qtypes[i]]
	}
	return "other"
}

// numRcodes bounds the response codes whose children are kept: the
// assigned ones (extended ones included) are below it. Others are looked
// up each time.
const numRcodes = dns.RcodeBadCookie + 1

// rcodeName is CoreDNS's rcode label for the responses of the server.
func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

// upstreamRcodeName is CoreDNS's rcode label for an upstream's answers
// (its proxy package spells unassigned codes without the prefix).
func upstreamRcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}

// listenerMetrics are the metrics of one listening address (the server
// label). A nil *listenerMetrics records nothing.
type listenerMetrics struct {
	m         *metrics
	server    string
	requests  children[prometheus.Counter]  // by zone, proto, family, type
	do        children[prometheus.Counter]  // by zone
	duration  children[prometheus.Observer] // by zone
	reqSize   children[prometheus.Observer] // by zone, proto
	respSize  children[prometheus.Observer] // by zone, proto
	responses children[prometheus.Counter]  // by zone, plugin, rcode below numRcodes
	zones     [numZones]string
}

// forListener returns the metrics of the listener on addr (host:port) of a
// server for the cluster zone; nil without metrics.
func (m *metrics) forListener(addr, zone string) *listenerMetrics {
	if m == nil {
		return nil
	}
	lm := &listenerMetrics{m: m, server: "dns://" + addr, zones: [numZones]string{"dropped", zone, "."}}
	lm.requests = newChildren(numZones*numProtos*numFamilies*numQtypes, func(i int) prometheus.Counter {
		q, i := i%numQtypes, i/numQtypes
		f, i := i%numFamilies, i/numFamilies
		p, z := i%numProtos, i/numProtos
		return m.requests.WithLabelValues(lm.server, lm.zones[z], "", protoNames[p], familyNames[f], qtypeName(q))
	})
	lm.do = newChildren(numZones, func(z int) prometheus.Counter {
		return m.do.WithLabelValues(lm.server, lm.zones[z], "")
	})
	lm.duration = newChildren(numZones, func(z int) prometheus.Observer {
		return m.duration.WithLabelValues(lm.server, lm.zones[z], "")
	})
	lm.reqSize = newChildren(numZones*numProtos, func(i int) prometheus.Observer {
		return m.requestSize.WithLabelValues(lm.server, lm.zones[i/numProtos], "", protoNames[i%numProtos])
	})
	lm.respSize = newChildren(numZones*numProtos, func(i int) prometheus.Observer {
		return m.responseSize.WithLabelValues(lm.server, lm.zones[i/numProtos], "", protoNames[i%numProtos])
	})
	lm.responses = newChildren(numZones*numPlugins*numRcodes, func(i int) prometheus.Counter {
		rc, i := i%numRcodes, i/numRcodes
		p, z := i%numPlugins, i/numPlugins
		return m.responses.WithLabelValues(lm.server, lm.zones[z], "", rcodeName(rc), pluginNames[p])
	})
	return lm
}

// report records one query r, answered from from with rcode in a message
// of size bytes, that arrived at start through w.
func (lm *listenerMetrics) report(w dns.ResponseWriter, r *dns.Msg, from origin, rcode, size int, start time.Time) {
	if lm == nil {
		return
	}
	zone, plugin := from.zone(), from.plugin()
	proto, family := transport(w.RemoteAddr())
	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	if opt := r.IsEdns0(); opt != nil && opt.Do() {
		lm.do.get(zone).Inc()
	}
	lm.requests.get(((zone*numProtos+proto)*numFamilies+family)*numQtypes + qtypeIndex(qtype)).Inc()
	lm.duration.get(zone).Observe(time.Since(start).Seconds())
	lm.respSize.get(zone*numProtos + proto).Observe(float64(size))
	lm.reqSize.get(zone*numProtos + proto).Observe(float64(r.Len()))
	if rcode >= 0 && rcode < numRcodes {
		lm.responses.get((zone*numPlugins+plugin)*numRcodes + rcode).Inc()
	} else {
		lm.m.responses.WithLabelValues(lm.server, lm.zones[zone], "", rcodeName(rcode), pluginNames[plugin]).Inc()
	}
}

// panicked counts a panic recovered while answering a query.
func (lm *listenerMetrics) panicked() {
	if lm != nil {
		lm.m.panics.Inc()
	}
}

// transport is a client's proto and family index, as CoreDNS tells them:
// TCP or else UDP; IPv4 (an IPv4-mapped address too) or else IPv6.
func transport(a net.Addr) (proto, family int) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		proto, ip = protoUDP, a.IP
	case *net.TCPAddr:
		proto, ip = protoTCP, a.IP
	}
	family = familyIPv6
	if ip.To4() != nil {
		family = familyIPv4
	}
	return proto, family
}

// upstreamMetrics are the forwarder's metrics for one upstream (the to
// label). A nil *upstreamMetrics records nothing.
type upstreamMetrics struct {
	m             *metrics
	to            string
	requests      children[prometheus.Counter]  // one
	responses     children[prometheus.Counter]  // by rcode
	duration      children[prometheus.Observer] // by rcode
	proxyDuration children[prometheus.Observer] // by rcode
}

// forUpstream returns the metrics of upstream to; nil without metrics.
func (m *metrics) forUpstream(to string) *upstreamMetrics {
	if m == nil {
		return nil
	}
	return &upstreamMetrics{
		m:  m,
		to: to,
		requests: newChildren(1, func(int) prometheus.Counter {
			return m.forwardRequests.WithLabelValues(to)
		}),
		responses: newChildren(numRcodes, func(rc int) prometheus.Counter {
			return m.forwardResponses.WithLabelValues(upstreamRcodeName(rc), to)
		}),
		duration: newChildren(numRcodes, func(rc int) prometheus.Observer {
			return m.forwardDuration.WithLabelValues(to, upstreamRcodeName(rc))
		}),
		proxyDuration: newChildren(numRcodes, func(rc int) prometheus.Observer {
			return m.proxyDuration.WithLabelValues("forward", to, upstreamRcodeName(rc))
		}),
	}
}

// answered records an answer with rcode that the upstream gave after
// took. As in CoreDNS, exchanges that fail (timeouts, refused
// connections) are not recorded.
func (um *upstreamMetrics) answered(rcode int, took time.Duration) {
	if um == nil {
		return
	}
	s := took.Seconds()
	um.requests.get(0).Inc()
	if rcode >= 0 && rcode < numRcodes {
		um.responses.get(rcode).Inc()
		um.duration.get(rcode).Observe(s)
		um.proxyDuration.get(rcode).Observe(s)
		return
	}
	rc := upstreamRcodeName(rcode)
	um.m.forwardResponses.WithLabelValues(rc, um.to).Inc()
	um.m.forwardDuration.WithLabelValues(um.to, rc).Observe(s)
	um.m.proxyDuration.WithLabelValues("forward", um.to, rc).Observe(s)
}
