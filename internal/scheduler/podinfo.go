package scheduler

import (
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Requests a container without one is counted with when scoring (never
// when filtering), as upstream's non-zero defaults: 100m CPU, 200Mi memory.
const (
	defaultMilliCPU = 100
	defaultMemory   = 200 * 1024 * 1024
)

// podInfo is everything the filters and scores need from one pod, computed
// once when the pod enters the queue or the cache so the per-node hot path
// parses nothing.
type podInfo struct {
	pod       *v1.Pod
	key       string
	namespace string
	labels    labels.Set
	priority  int32
	created   time.Time

	res        resources // requests as the filters count them
	nonZeroCPU int64     // requests as the scores count them
	nonZeroMem int64

	ports       []hostPort
	tolerations []v1.Toleration

	// nodeSelector is spec.nodeSelector (nil if empty); required the
	// required node affinity terms (ORed; nil if none, and a non-nil empty
	// slice matches nothing).
	nodeSelector labels.Selector
	required     []nodeTerm
	preferred    []weightedNodeTerm

	// affinity is nil unless the pod has inter-pod (anti-)affinity.
	affinity *podAffinity
	// hardSpread and softSpread are the DoNotSchedule and ScheduleAnyway
	// topology spread constraints. For a pod without constraints of its
	// own, softSpread holds the system defaults once setDefaultSpread has
	// run, and spreadDefaulted is true.
	hardSpread      []spreadConstraint
	softSpread      []spreadConstraint
	spreadDefaulted bool

	// claims is nil unless the pod has volumes backed by claims.
	claims *podClaims
}

// podClaims is what the volume filters keep of a pod with claims.
type podClaims struct {
	// keys are the namespace/name keys of the claims its
	// persistentVolumeClaim volumes name, each once: the cache indexes
	// pods by them for ReadWriteOncePod. (Generic ephemeral volumes'
	// claims, named after the pod, are not counted there, as upstream.)
	keys []string
	// volumes is the volume filters' state for the current attempt,
	// which the decision loop sets before each decision.
	volumes *volumeState
}

// resources is an amount of schedulable resources in integer units:
// milli-CPU, bytes, and the scalar (extended, hugepages) resources by name.
type resources struct {
	milliCPU  int64
	memory    int64
	ephemeral int64
	scalar    map[v1.ResourceName]int64
}

func (r *resources) add(o *resources, sign int64) {
	r.milliCPU += sign * o.milliCPU
	r.memory += sign * o.memory
	r.ephemeral += sign * o.ephemeral
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[v1.ResourceName]int64{}
		}
		r.scalar[name] += sign * v
	}
}

func (r *resources) setMax(o *resources) {
	r.milliCPU = max(r.milliCPU, o.milliCPU)
	r.memory = max(r.memory, o.memory)
	r.ephemeral = max(r.ephemeral, o.ephemeral)
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[v1.ResourceName]int64{}
		}
		r.scalar[name] = max(r.scalar[name], v)
	}
}

// resourcesOf converts a ResourceList; pods (the pod count) is skipped.
func resourcesOf(list v1.ResourceList) resources {
	var r resources
	for name, q := range list {
		switch name {
		case v1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case v1.ResourceMemory:
			r.memory = q.Value()
		case v1.ResourceEphemeralStorage:
			r.ephemeral = q.Value()
		case v1.ResourcePods:
		default:
			if r.scalar == nil {
				r.scalar = map[v1.ResourceName]int64{}
			}
			r.scalar[name] = q.Value()
		}
	}
	return r
}

// hostPort is one host port a pod asks for.
type hostPort struct {
	ip       string // "" and "0.0.0.0" mean every address
	protocol v1.Protocol
	port     int32
}

func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || isWildcard(a.ip) || isWildcard(b.ip)
}

func isWildcard(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// newPodInfo precomputes a pod's scheduling state. It never fails: an
// invalid selector matches nothing, as upstream treats it.
func newPodInfo(pod *v1.Pod) *podInfo {
	p := &podInfo{pod: pod, key: pod.Namespace + "/" + pod.Name, namespace: pod.Namespace, labels: labels.Set(pod.Labels), created: pod.CreationTimestamp.Time}
	if pod.Spec.Priority != nil {
		p.priority = *pod.Spec.Priority
	}
	p.res, p.nonZeroCPU, p.nonZeroMem = resizeAwareRequests(pod)
	for i := range pod.Spec.Containers {
		p.ports = appendPorts(p.ports, pod.Spec.Containers[i].Ports)
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isSidecar(c) {
			p.ports = appendPorts(p.ports, c.Ports)
		}
	}
	p.tolerations = pod.Spec.Tolerations
	if len(pod.Spec.NodeSelector) > 0 {
		p.nodeSelector = labels.SelectorFromSet(pod.Spec.NodeSelector)
	}
	if a := pod.Spec.Affinity; a != nil {
		if na := a.NodeAffinity; na != nil {
			if rq := na.RequiredDuringSchedulingIgnoredDuringExecution; rq != nil {
				p.required = make([]nodeTerm, 0, len(rq.NodeSelectorTerms))
				for i := range rq.NodeSelectorTerms {
					p.required = append(p.required, compileNodeTerm(&rq.NodeSelectorTerms[i]))
				}
			}
			for _, pt := range na.PreferredDuringSchedulingIgnoredDuringExecution {
				if pt.Weight != 0 {
					p.preferred = append(p.preferred, weightedNodeTerm{weight: int64(pt.Weight), term: compileNodeTerm(&pt.Preference)})
				}
			}
		}
		p.affinity = compilePodAffinity(pod, a)
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.PersistentVolumeClaim == nil && v.Ephemeral == nil {
			continue
		}
		if p.claims == nil {
			p.claims = &podClaims{}
		}
		if v.PersistentVolumeClaim != nil {
			if key := pod.Namespace + "/" + v.PersistentVolumeClaim.ClaimName; !slices.Contains(p.claims.keys, key) {
				p.claims.keys = append(p.claims.keys, key)
			}
		}
	}
	for i := range pod.Spec.TopologySpreadConstraints {
		c := compileSpread(pod, &pod.Spec.TopologySpreadConstraints[i])
		if pod.Spec.TopologySpreadConstraints[i].WhenUnsatisfiable == v1.ScheduleAnyway {
			p.softSpread = append(p.softSpread, c)
		} else {
			p.hardSpread = append(p.hardSpread, c)
		}
	}
	return p
}

// volumeState is the pod's volume state for the current attempt; nil for
// a pod without claims.
func (p *podInfo) volumeState() *volumeState {
	if p.claims == nil {
		return nil
	}
	return p.claims.volumes
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

func appendPorts(dst []hostPort, ports []v1.ContainerPort) []hostPort {
	for _, cp := range ports {
		if cp.HostPort <= 0 {
			continue
		}
		proto := cp.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		dst = append(dst, hostPort{ip: cp.HostIP, protocol: proto, port: cp.HostPort})
	}
	return dst
}

// podRequests returns what a pod asks for, as upstream computes it: the sum
// of the app containers and sidecars, or the largest init container (plus
// the sidecars started before it) if that is larger, plus the pod overhead.
// nonZero CPU and memory count a container without a request at the
// scoring defaults.
func podRequests(spec *v1.PodSpec) (req resources, nonZeroCPU, nonZeroMem int64) {
	var sidecars resources
	var nzSidecarCPU, nzSidecarMem int64
	var initMax resources
	var nzInitCPU, nzInitMem int64
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		r := resourcesOf(c.Resources.Requests)
		cpu, mem := nonZero(c)
		if isSidecar(c) {
			sidecars.add(&r, 1)
			nzSidecarCPU += cpu
			nzSidecarMem += mem
			continue
		}
		r.add(&sidecars, 1)
		initMax.setMax(&r)
		nzInitCPU = max(nzInitCPU, cpu+nzSidecarCPU)
		nzInitMem = max(nzInitMem, mem+nzSidecarMem)
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		r := resourcesOf(c.Resources.Requests)
		req.add(&r, 1)
		cpu, mem := nonZero(c)
		nonZeroCPU += cpu
		nonZeroMem += mem
	}
	req.add(&sidecars, 1)
	req.setMax(&initMax)
	nonZeroCPU = max(nonZeroCPU+nzSidecarCPU, nzInitCPU)
	nonZeroMem = max(nonZeroMem+nzSidecarMem, nzInitMem)
	if spec.Overhead != nil {
		o := resourcesOf(spec.Overhead)
		req.add(&o, 1)
		nonZeroCPU += o.milliCPU
		nonZeroMem += o.memory
	}
	return req, nonZeroCPU, nonZeroMem
}

func nonZero(c *v1.Container) (cpu, mem int64) {
	cpu, mem = defaultMilliCPU, defaultMemory
	if q, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		cpu = q.MilliValue()
	}
	if q, ok := c.Resources.Requests[v1.ResourceMemory]; ok {
		mem = q.Value()
	}
	return cpu, mem
}

// nodeTerm is a compiled NodeSelectorTerm: label requirements ANDed with
// metadata.name requirements. A term with neither matches nothing.
type nodeTerm struct {
	sel    labels.Selector // nil: no label requirements
	fields []nameReq
	never  bool // empty or invalid term
}

type nameReq struct {
	in    bool
	names []string
}

type weightedNodeTerm struct {
	weight int64
	term   nodeTerm
}

var nodeSelectorOps = map[v1.NodeSelectorOperator]selection.Operator{
	v1.NodeSelectorOpIn:           selection.In,
	v1.NodeSelectorOpNotIn:        selection.NotIn,
	v1.NodeSelectorOpExists:       selection.Exists,
	v1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	v1.NodeSelectorOpGt:           selection.GreaterThan,
	v1.NodeSelectorOpLt:           selection.LessThan,
}

func compileNodeTerm(t *v1.NodeSelectorTerm) nodeTerm {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return nodeTerm{never: true}
	}
	var out nodeTerm
	if len(t.MatchExpressions) > 0 {
		sel := labels.NewSelector()
		for _, e := range t.MatchExpressions {
			op, ok := nodeSelectorOps[e.Operator]
			if !ok {
				return nodeTerm{never: true}
			}
			r, err := labels.NewRequirement(e.Key, op, e.Values)
			if err != nil {
				return nodeTerm{never: true}
			}
			sel = sel.Add(*r)
		}
		out.sel = sel
	}
	for _, f := range t.MatchFields {
		if f.Key != metav1.ObjectNameField || (f.Operator != v1.NodeSelectorOpIn && f.Operator != v1.NodeSelectorOpNotIn) {
			return nodeTerm{never: true}
		}
		out.fields = append(out.fields, nameReq{in: f.Operator == v1.NodeSelectorOpIn, names: f.Values})
	}
	return out
}

func (t *nodeTerm) matches(name string, l labels.Set) bool {
	if t.never {
		return false
	}
	if t.sel != nil && !t.sel.Matches(l) {
		return false
	}
	for _, f := range t.fields {
		found := false
		for _, n := range f.names {
			if n == name {
				found = true
				break
			}
		}
		if found != f.in {
			return false
		}
	}
	return true
}

// matchesNodeSelector reports whether a node satisfies the pod's
// nodeSelector and required node affinity.
func (p *podInfo) matchesNodeSelector(name string, l labels.Set) bool {
	if p.nodeSelector != nil && !p.nodeSelector.Matches(l) {
		return false
	}
	if p.required == nil {
		return true
	}
	for i := range p.required {
		if p.required[i].matches(name, l) {
			return true
		}
	}
	return false
}
