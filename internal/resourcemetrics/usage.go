package resourcemetrics

import (
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// startWindow bounds how long before a reading a container may have
// started for its start time to serve as an earlier reading of zero CPU.
// Below min the rate would describe only the container's first moments
// (and the node's stats may lag its start); above max the container should
// have been seen by an earlier scrape, and using its start would report
// its lifetime average as current usage (after an API server restart,
// say).
type startWindow struct{ min, max time.Duration }

func (w startWindow) allows(d int64) bool {
	return d >= int64(w.min) && d <= int64(w.max)
}

// rate is a CPU usage derived from two readings of a cumulative counter.
type rate struct {
	nanocores uint64
	window    int64 // ns between the readings
	at        int64 // Unix ns of the later reading
	ok        bool
}

func rateBetween(t1 int64, c1 uint64, t2 int64, c2 uint64) rate {
	w := t2 - t1
	r := float64(c2-c1) / float64(w) * 1e9
	if r >= math.MaxInt64 {
		r = math.MaxInt64 - 1024 // stay inside int64 for the Quantity
	}
	return rate{nanocores: uint64(r), window: w, at: t2, ok: true}
}

// counter follows a cumulative CPU counter across scrapes.
type counter struct {
	at    int64  // Unix ns of the last reading; 0 when none
	cum   uint64 // CPU ns at the last reading
	start int64  // start of the container, Unix ns; 0 unknown (and for nodes)
	rate  rate   // usage as of the last reading; !ok when none
}

// observe takes a new reading at Unix ns at of cum CPU ns, from a
// container started at start (0 unknown).
//
// The rate is taken between the last reading and this one when both come
// from the same run: same start time, later timestamp, counter not
// decreased. Otherwise (first reading, restart, counter reset, clock going
// back) the start time stands in as a reading of zero when startWindow
// allows, and else there is no rate until the next scrape. A repeat of the
// last reading (a kubelet serving cached stats) changes nothing.
func (c *counter) observe(at int64, cum uint64, start int64, w startWindow) {
	restarted := start != 0 && c.start != 0 && start != c.start
	if c.at != 0 && !restarted {
		switch {
		case at == c.at && cum == c.cum:
			return
		case at > c.at && cum >= c.cum:
			c.rate = rateBetween(c.at, c.cum, at, cum)
			c.at, c.cum = at, cum
			if start != 0 {
				c.start = start
			}
			return
		}
	}
	c.rate = rate{}
	if start != 0 && start < at && w.allows(at-start) {
		c.rate = rateBetween(start, 0, at, cum)
	}
	c.at, c.cum = at, cum
	if start != 0 {
		c.start = start
	}
}

// nodeState is what the scraper keeps of one node between scrapes. Only
// the goroutine scraping the node touches it during a pass.
type nodeState struct {
	name       string
	cpu        counter
	memory     memSample
	containers map[string]*containerState // by containerReading.key
	gen        uint64                     // counts successful scrapes

	lastSuccess time.Time
	failing     bool // the last scrape failed, and that was logged

	// pub is what this node contributes to the Store; empty after a failed
	// scrape.
	pub published
}

type containerState struct {
	key    string
	cpu    counter
	memory memSample
	gen    uint64 // nodeState.gen of the last scrape that listed it
}

// published is one node's share of the Store.
type published struct {
	node *metricsv1beta1.NodeMetrics
	pods []*metricsv1beta1.PodMetrics
}

// forget drops every reading, so that stale values cannot feed a rate.
func (n *nodeState) forget() {
	n.cpu, n.memory = counter{}, memSample{}
	n.containers = nil
}

// apply folds a successful scrape into the state and recomputes pub.
// Containers the kubelet no longer lists are dropped. As metrics-server
// does, a zero CPU counter or working set counts as absent: kubelets
// report zeros for containers still being set up. scratch is reused
// between calls and returned.
func (n *nodeState) apply(r *reading, w startWindow, scratch []*containerState) []*containerState {
	n.gen++
	if n.containers == nil {
		n.containers = make(map[string]*containerState, len(r.containers))
	}
	for i := range r.containers {
		cr := &r.containers[i]
		c := n.containers[cr.key]
		if c == nil {
			c = &containerState{key: cr.key}
			n.containers[cr.key] = c
		}
		c.gen = n.gen
		c.memory = cr.memory
		if cr.cpu.at == 0 || cr.cpu.cum == 0 {
			c.cpu.rate = rate{} // keep the last reading for the next scrape
		} else {
			c.cpu.observe(cr.cpu.at, cr.cpu.cum, cr.start, w)
		}
	}
	for k, c := range n.containers {
		if c.gen != n.gen {
			delete(n.containers, k)
		}
	}
	n.memory = r.nodeMemory
	if r.nodeCPU.at == 0 || r.nodeCPU.cum == 0 {
		n.cpu.rate = rate{}
	} else {
		n.cpu.observe(r.nodeCPU.at, r.nodeCPU.cum, 0, w)
	}
	return n.publish(scratch)
}

// publish builds pub from the state: the node when it has both values, and
// every pod all of whose listed containers have both.
func (n *nodeState) publish(scratch []*containerState) []*containerState {
	n.pub = published{}
	if n.cpu.rate.ok && n.memory.ok && n.memory.bytes > 0 {
		n.pub.node = &metricsv1beta1.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: n.name},
			Timestamp:  metav1.NewTime(time.Unix(0, n.cpu.rate.at)),
			Window:     metav1.Duration{Duration: time.Duration(n.cpu.rate.window)},
			Usage:      usage(n.cpu.rate.nanocores, n.memory.bytes),
		}
	}

	cs := scratch[:0]
	for _, c := range n.containers {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *containerState) int { return strings.Compare(a.key, b.key) })
	for i := 0; i < len(cs); {
		ns, pod, _ := splitKey(cs[i].key)
		prefix := cs[i].key[:len(ns)+len(pod)+2] // "ns\x00pod\x00"
		j := i + 1
		for j < len(cs) && strings.HasPrefix(cs[j].key, prefix) {
			j++
		}
		if pm := podMetrics(ns, pod, cs[i:j]); pm != nil {
			n.pub.pods = append(n.pub.pods, pm)
		}
		i = j
	}
	clear(cs) // hold no containers past this call
	return cs
}

// podMetrics returns the pod's metrics, or nil when a container lacks a
// value. Containers come sorted by name. The pod's timestamp and window
// are those of its earliest container reading, as metrics-server does.
func podMetrics(ns, pod string, cs []*containerState) *metricsv1beta1.PodMetrics {
	var first rate
	for _, c := range cs {
		if !c.cpu.rate.ok || !c.memory.ok || c.memory.bytes == 0 {
			return nil
		}
		if !first.ok || c.cpu.rate.at < first.at {
			first = c.cpu.rate
		}
	}
	pm := &metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
		Timestamp:  metav1.NewTime(time.Unix(0, first.at)),
		Window:     metav1.Duration{Duration: time.Duration(first.window)},
		Containers: make([]metricsv1beta1.ContainerMetrics, len(cs)),
	}
	for i, c := range cs {
		_, _, name := splitKey(c.key)
		pm.Containers[i] = metricsv1beta1.ContainerMetrics{
			Name:  name,
			Usage: usage(c.cpu.rate.nanocores, c.memory.bytes),
		}
	}
	return pm
}

// usage renders CPU and memory as metrics-server does: CPU in nanocores
// (serialized like "12345678n"; kubectl top rounds to millicores), memory
// in bytes with a binary-SI format (serialized like "1234Ki" when exact).
func usage(nanocores, bytes uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(nanocores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(bytes), resource.BinarySI),
	}
}

// splitKey splits a containerReading.key.
func splitKey(key string) (namespace, pod, container string) {
	namespace, rest, _ := strings.Cut(key, "\x00")
	pod, container, _ = strings.Cut(rest, "\x00")
	return namespace, pod, container
}
