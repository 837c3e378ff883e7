package sim

import (
	"cmp"
	"math"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Annotations that set what a simulated pod's containers use, as
// resource quantities. Each container of the pod uses that much (a pod
// with two containers annotated "250m" uses half a core). Without the
// annotation, or when it does not parse as a non-negative quantity, a
// container uses Config.UsageFraction of its own request (nothing when it
// requests nothing). The annotations are read on every scrape, so
// changing one changes the usage the next scrape reports: that is how a
// test drives the HorizontalPodAutoscaler.
const (
	// AnnotationCPUUsage is in cores: "250m", "1.5".
	AnnotationCPUUsage = "sim.skiff.io/cpu-usage"
	// AnnotationMemoryUsage is in bytes: "64Mi".
	AnnotationMemoryUsage = "sim.skiff.io/memory-usage"
)

// What a node's own daemons (kubelet, runtime, OS) use besides its pods.
// An idle node reports that much rather than zeros, as a real one does:
// the metrics pipeline, like metrics-server, takes a zero counter or
// working set as no reading, and would leave idle nodes out.
const (
	nodeSystemCores  = 0.05
	nodeSystemMemory = 256 << 20
)

// podNodeIndex indexes the pod informer by spec.nodeName, so that a
// scrape reads one node's pods without listing all of them.
const podNodeIndex = "spec.nodeName"

func indexPodNode(obj any) ([]string, error) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		return []string{p.Spec.NodeName}, nil
	}
	return nil, nil
}

// runningContainer is one running container's usage rates.
type runningContainer struct {
	name   string
	start  time.Time
	cores  float64
	memory uint64
}

// runningContainers appends to out the containers of pod that are
// running, with what each uses: the Running pod's regular containers and
// sidecars whose status shows them running (started at their
// state.running.startedAt, which a crash-loop restart moves), or, for a
// container without any status, started at the pod's status.startTime.
// A pod that is not Running has none.
func runningContainers(pod *corev1.Pod, fraction float64, out []runningContainer) []runningContainer {
	if pod == nil || pod.Status.Phase != corev1.PodRunning {
		return out
	}
	cpuAnn, cpuSet := annotationQuantity(pod, AnnotationCPUUsage)
	memAnn, memSet := annotationQuantity(pod, AnnotationMemoryUsage)
	add := func(c *corev1.Container, statuses []corev1.ContainerStatus) {
		var start time.Time
		if st := findContainerStatus(statuses, c.Name); st != nil {
			if st.State.Running == nil {
				return
			}
			start = st.State.Running.StartedAt.Time
		}
		if start.IsZero() && pod.Status.StartTime != nil {
			start = pod.Status.StartTime.Time
		}
		if start.IsZero() {
			return
		}
		rc := runningContainer{name: c.Name, start: start}
		if cpuSet {
			rc.cores = cpuAnn.AsApproximateFloat64()
		} else if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			rc.cores = fraction * q.AsApproximateFloat64()
		}
		if memSet {
			rc.memory = uint64(max(memAnn.Value(), 0))
		} else if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			rc.memory = uint64(math.Round(fraction * float64(max(q.Value(), 0))))
		}
		out = append(out, rc)
	}
	for i := range pod.Spec.InitContainers {
		if isSidecar(pod.Spec.InitContainers[i]) {
			add(&pod.Spec.InitContainers[i], pod.Status.InitContainerStatuses)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], pod.Status.ContainerStatuses)
	}
	return out
}

func annotationQuantity(pod *corev1.Pod, key string) (resource.Quantity, bool) {
	s, ok := pod.Annotations[key]
	if !ok {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return resource.Quantity{}, false
	}
	return q, true
}

// cpuSince is the CPU time, in core-nanoseconds, that a container using
// cores has used from from (or its start, if later) until now.
func (c runningContainer) cpuSince(from, now time.Time) float64 {
	if c.start.After(from) {
		from = c.start
	}
	d := now.Sub(from)
	if d <= 0 {
		return 0
	}
	return c.cores * float64(d)
}

// nodeCPUShare is what pod adds, at now, to the CPU counter of a node
// registered at registered (Unix ns; 0: not yet, and nothing counts).
func nodeCPUShare(pod *corev1.Pod, fraction float64, registered int64, now time.Time) int64 {
	if pod == nil || registered == 0 {
		return 0
	}
	var buf [4]runningContainer
	from := time.Unix(0, registered)
	var ns float64
	for _, c := range runningContainers(pod, fraction, buf[:0]) {
		ns += c.cpuSince(from, now)
	}
	return int64(ns)
}

// accountPod keeps a node's CPU counter continuous across a change of
// one of its pods from old to cur (nil: absent), as the pod informer
// reports it.
//
// A node's counter is its cpuAdjust plus the share of every running pod
// (nodeCPUShare), so a pod that stops, goes away, restarts a container or
// changes its annotation would make the sum jump. The share the pod had
// before the change, less the one it has after, moves to cpuAdjust at the
// change: the node keeps the CPU time its past pods used, and the counter
// only grows. (Scrapes clamp it besides: see nodeUsage.)
func (s *Sim) accountPod(old, cur *corev1.Pod) {
	pod := cur
	if pod == nil {
		pod = old
	}
	if pod == nil {
		return
	}
	n := s.nodes[pod.Spec.NodeName]
	if n == nil {
		return
	}
	reg := n.registeredAt.Load()
	if reg == 0 {
		return
	}
	now := time.Now()
	if d := nodeCPUShare(old, s.cfg.UsageFraction, reg, now) - nodeCPUShare(cur, s.cfg.UsageFraction, reg, now); d != 0 {
		n.cpuAdjust.Add(d)
	}
}

// nodeUsage reads node n's usage at now from the pod cache: the running
// pods bound to it, sorted by namespace and name, with their running
// containers, and the node's totals (theirs plus the node's own,
// nodeSystemCores and nodeSystemMemory).
func (s *Sim) nodeUsage(n *simNode, now time.Time) nodeUsage {
	u := nodeUsage{at: now, memoryBytes: nodeSystemMemory}
	objs, _ := s.pods.ByIndex(podNodeIndex, n.name)
	reg := n.registeredAt.Load()
	var cpuNS float64
	if reg != 0 {
		cpuNS = float64(n.cpuAdjust.Load()) + nodeSystemCores*float64(now.Sub(time.Unix(0, reg)))
	}
	var buf []runningContainer
	for _, obj := range objs {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			continue
		}
		buf = runningContainers(pod, s.cfg.UsageFraction, buf[:0])
		if len(buf) == 0 {
			continue
		}
		p := podUsage{namespace: pod.Namespace, name: pod.Name, containers: make([]containerUsage, 0, len(buf))}
		for _, c := range buf {
			p.containers = append(p.containers, containerUsage{
				name:        c.name,
				start:       c.start,
				cpuSeconds:  c.cpuSince(c.start, now) / 1e9,
				memoryBytes: c.memory,
			})
			u.memoryBytes += c.memory
			if reg != 0 {
				cpuNS += c.cpuSince(time.Unix(0, reg), now)
			}
		}
		u.pods = append(u.pods, p)
	}
	slices.SortFunc(u.pods, func(a, b podUsage) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
	})
	// The pod cache changes before the informer tells accountPod, so a
	// scrape in between may see a pod gone whose time is not yet in
	// cpuAdjust: never report less than before.
	ns := max(int64(cpuNS), 0)
	for {
		last := n.cpuServed.Load()
		if ns <= last {
			ns = last
			break
		}
		if n.cpuServed.CompareAndSwap(last, ns) {
			break
		}
	}
	u.cpuSeconds = float64(ns) / 1e9
	return u
}
