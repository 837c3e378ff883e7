package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// In-place pod resize (pods/resize), as upstream's kubelet does it.
//
// The kubelet keeps, per pod, the resources it has accepted for each
// container (the allocation) and what it has set on each running
// container (actuated: the resources a container was created with,
// recorded in its annotationResources, or those a later
// UpdateContainerResources set). Every sync:
//
//  1. allocate: when the spec's resources differ from the allocation,
//     the kubelet accepts them if the pod's requests fit the node's
//     allocatable beside the other pods' allocations; otherwise the pod
//     gets PodResizePending (reason Deferred, upstream's "Node didn't
//     have enough resource" message) and keeps running with its
//     allocation. Accepting sets PodResizeInProgress.
//  2. resize (podRun.resize): every running container whose actuated
//     cpu or memory differs from its allocation is restarted when the
//     resizePolicy of a changed resource says RestartContainer, and
//     otherwise updated in place through CRI UpdateContainerResources,
//     with the cgroup values a new container would get
//     (Kubelet.resources). A memory limit set below the container's
//     current usage fails the whole resize: PodResizeInProgress with
//     reason Error, as upstream.
//  3. status: containerStatuses[].allocatedResources are the allocated
//     requests, .resources the actuated resources of a running container
//     (the allocation for others); PodResizeInProgress is removed once
//     every running container has its allocation.
//
// Containers are always created from the allocation, never straight from
// the spec, so that a deferred resize does not take effect by a restart.
//
// Differences from upstream (docs/compatibility.md): pod-level resources
// cannot be resized (Infeasible); the node has no pod-level cgroup
// limits to resize; status.resources report what the kubelet set rather
// than what the runtime reads back from the cgroups.

// annotationResources records on a container the cpu and memory requests
// and limits it was created with.
const annotationResources = "skiff.io/resources"

// allocationFile is the pod directory's record of its podAllocation.
const allocationFile = "allocation.json"

// Upstream's pod resize event reasons.
const (
	eventResizeStarted    = "ResizeStarted"
	eventResizeCompleted  = "ResizeCompleted"
	eventResizeDeferred   = "ResizeDeferred"
	eventResizeInfeasible = "ResizeInfeasible"
	eventResizeError      = "ResizeError"
)

// allocations holds the podAllocation of every pod the kubelet runs.
type allocations struct {
	mu   sync.Mutex
	pods map[types.UID]*podAllocation
}

// podAllocation is one pod's resize state. The exported fields are
// written to the pod's allocationFile once they differ from the spec (a
// resize accepted, deferred or applied) so that a restarted kubelet keeps
// them; without the file the allocation is the spec. The conditions are
// rebuilt from the pod's status.
type podAllocation struct {
	// Containers are the accepted resources of every container and init
	// container, by name.
	Containers map[string]corev1.ResourceRequirements `json:"containers"`
	// PodResources are the accepted pod-level resources.
	PodResources *corev1.ResourceRequirements `json:"podResources,omitempty"`
	// Updated are the resources set in place on containers, by container
	// ID, since they were created.
	Updated map[string]corev1.ResourceRequirements `json:"updated,omitempty"`

	pending, inProgress *corev1.PodCondition
}

// allocationLocked returns pod's state, loading it from its pod directory or
// starting it from the spec. Callers hold k.alloc.mu.
func (k *Kubelet) allocationLocked(pod *corev1.Pod) *podAllocation {
	if k.alloc.pods == nil {
		k.alloc.pods = map[types.UID]*podAllocation{}
	}
	if a, ok := k.alloc.pods[pod.UID]; ok {
		return a
	}
	a := &podAllocation{}
	if data, err := os.ReadFile(filepath.Join(k.podDir(string(pod.UID)), allocationFile)); err == nil {
		if err := json.Unmarshal(data, a); err != nil {
			k.log.Warn("pod allocation record", "pod", klogRef(pod), "err", err)
			a = &podAllocation{}
		}
	}
	if a.Containers == nil {
		a.Containers = specResources(pod)
		a.PodResources = pod.Spec.Resources.DeepCopy()
	}
	for i := range pod.Status.Conditions {
		c := pod.Status.Conditions[i]
		switch c.Type {
		case corev1.PodResizePending:
			a.pending = &c
		case corev1.PodResizeInProgress:
			a.inProgress = &c
		}
	}
	k.alloc.pods[pod.UID] = a
	return a
}

// saveAllocationLocked writes a to pod's directory. Callers hold k.alloc.mu.
func (k *Kubelet) saveAllocationLocked(uid types.UID, a *podAllocation) error {
	dir := k.podDir(string(uid))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("pod directory: %w", err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, allocationFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("pod allocation record: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, allocationFile))
}

// forgetAllocation drops a removed pod's state (its directory, and the
// record in it, is removed by the caller).
func (k *Kubelet) forgetAllocation(uid types.UID) {
	k.alloc.mu.Lock()
	delete(k.alloc.pods, uid)
	k.alloc.mu.Unlock()
}

// specResources are the resources of pod's containers and init
// containers, by name.
func specResources(pod *corev1.Pod) map[string]corev1.ResourceRequirements {
	out := map[string]corev1.ResourceRequirements{}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			out[cs[i].Name] = *cs[i].Resources.DeepCopy()
		}
	}
	return out
}

// allocate is step 1: it accepts or defers a resize the spec asks for,
// and returns pod as the kubelet runs it: a copy whose containers carry
// the allocated resources (pod itself when they are the spec's).
func (k *Kubelet) allocate(pod *corev1.Pod) *corev1.Pod {
	k.alloc.mu.Lock()
	a := k.allocationLocked(pod)
	want := specResources(pod)
	same := resourcesEqual(want, a.Containers) && apiequality.Semantic.DeepEqual(pod.Spec.Resources, a.PodResources)
	var event, eventType, eventMsg string
	if same {
		a.pending = nil
	} else {
		others := k.otherAllocatedRequestsLocked(pod.UID)
		reason, msg := resizeFit(pod, a, others, k.allocatable())
		if reason == "" {
			a.Containers = want
			a.PodResources = pod.Spec.Resources.DeepCopy()
			if err := k.saveAllocationLocked(pod.UID, a); err != nil {
				k.log.Warn("pod allocation record", "pod", klogRef(pod), "err", err)
			}
			a.pending = nil
			a.inProgress = resizeCondition(corev1.PodResizeInProgress, "", "", pod.Generation, nil)
			event, eventType, eventMsg = eventResizeStarted, corev1.EventTypeNormal, resizeMessage("Pod resize started", pod, pod.Generation, "")
		} else {
			prev := a.pending
			if prev == nil {
				// Keep the allocation a restarted kubelet must not
				// take the spec for.
				if err := k.saveAllocationLocked(pod.UID, a); err != nil {
					k.log.Warn("pod allocation record", "pod", klogRef(pod), "err", err)
				}
			}
			a.pending = resizeCondition(corev1.PodResizePending, reason, msg, pod.Generation, prev)
			if prev == nil || prev.Reason != reason || prev.ObservedGeneration != pod.Generation {
				event, eventType = eventResizeDeferred, corev1.EventTypeWarning
				if reason == corev1.PodReasonInfeasible {
					event = eventResizeInfeasible
				}
				eventMsg = resizeMessage("Pod resize "+reason, pod, pod.Generation, msg)
			}
		}
	}
	out := allocatedPod(pod, a)
	k.alloc.mu.Unlock()
	if event != "" {
		k.recorder.Event(pod, eventType, event, eventMsg)
	}
	return out
}

// resourcesEqual compares two allocations semantically ("1000m" is "1").
func resourcesEqual(a, b map[string]corev1.ResourceRequirements) bool {
	if len(a) != len(b) {
		return false
	}
	for name, r := range a {
		o, ok := b[name]
		if !ok || !apiequality.Semantic.DeepEqual(r, o) {
			return false
		}
	}
	return true
}

// allocatedPod is pod with its containers' resources replaced by a's.
func allocatedPod(pod *corev1.Pod, a *podAllocation) *corev1.Pod {
	if resourcesEqual(specResources(pod), a.Containers) && apiequality.Semantic.DeepEqual(pod.Spec.Resources, a.PodResources) {
		return pod
	}
	out := pod.DeepCopy()
	for _, cs := range [][]corev1.Container{out.Spec.InitContainers, out.Spec.Containers} {
		for i := range cs {
			if r, ok := a.Containers[cs[i].Name]; ok {
				cs[i].Resources = *r.DeepCopy()
			}
		}
	}
	out.Spec.Resources = a.PodResources.DeepCopy()
	return out
}

// otherAllocatedRequestsLocked sums the cpu and memory requests of the
// kubelet's other live pods, by their allocation where the kubelet has
// one. Callers hold k.alloc.mu.
func (k *Kubelet) otherAllocatedRequestsLocked(uid types.UID) corev1.ResourceList {
	k.mu.Lock()
	others := make([]*corev1.Pod, 0, len(k.pods))
	for id, p := range k.pods {
		if id != uid && !terminalPhase(p.Status.Phase) {
			others = append(others, p)
		}
	}
	k.mu.Unlock()
	sum := corev1.ResourceList{}
	for _, p := range others {
		if a, ok := k.alloc.pods[p.UID]; ok {
			p = allocatedPod(p, a)
		}
		for name, q := range podRequests(p) {
			addTo(sum, name, q)
		}
	}
	return sum
}

func addTo(rl corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	cur := rl[name]
	cur.Add(q)
	rl[name] = cur
}

// podRequests are pod's effective cpu and memory requests as upstream's
// scheduler and kubelet count them: pod-level requests when set; else
// the app containers' and sidecars' sum, or an init container's request
// plus the sidecars started before it, whichever is larger.
func podRequests(pod *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	names := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
	if r := pod.Spec.Resources; r != nil {
		for _, n := range names {
			if q, ok := r.Requests[n]; ok {
				out[n] = q.DeepCopy()
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	sidecars := corev1.ResourceList{}
	initMax := corev1.ResourceList{}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) {
			for _, n := range names {
				if q, ok := c.Resources.Requests[n]; ok {
					addTo(sidecars, n, q)
				}
			}
			continue
		}
		for _, n := range names {
			q := sidecars[n].DeepCopy()
			q.Add(c.Resources.Requests[n])
			if m := initMax[n]; q.Cmp(m) > 0 {
				initMax[n] = q
			}
		}
	}
	for i := range pod.Spec.Containers {
		for _, n := range names {
			if q, ok := pod.Spec.Containers[i].Resources.Requests[n]; ok {
				addTo(out, n, q)
			}
		}
	}
	for _, n := range names {
		if q, ok := sidecars[n]; ok {
			addTo(out, n, q)
		}
		if m := initMax[n]; m.Cmp(out[n]) > 0 {
			out[n] = m
		}
	}
	return out
}

// resizeFit decides whether the resize pod's spec asks for may be
// accepted now: "" when it may, else a PodResizePending reason and
// message. others are the other pods' allocated requests. Pod-level
// resources cannot change (Infeasible); otherwise the pod's new requests
// must fit the node's allocatable beside others, cpu first, with the
// scheduler's message (Deferred: the pod keeps what it has until room
// is made).
func resizeFit(pod *corev1.Pod, a *podAllocation, others, allocatable corev1.ResourceList) (reason, message string) {
	if !apiequality.Semantic.DeepEqual(pod.Spec.Resources, a.PodResources) {
		return corev1.PodReasonInfeasible, "In-place pod-level resources resize is not supported on this node"
	}
	req := podRequests(pod)
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		capQ, ok := allocatable[n]
		if !ok {
			continue
		}
		r, u, c := req[n], others[n], capQ
		value := func(q resource.Quantity) int64 { return q.Value() }
		if n == corev1.ResourceCPU {
			value = func(q resource.Quantity) int64 { return q.MilliValue() }
		}
		if value(r) == 0 {
			continue
		}
		if value(r)+value(u) > value(c) {
			return corev1.PodReasonDeferred, fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
				n, value(r), value(u), value(c))
		}
	}
	return "", ""
}

// resizeCondition is a True condition of type t, keeping prev's
// transition time when there was one.
func resizeCondition(t corev1.PodConditionType, reason, message string, generation int64, prev *corev1.PodCondition) *corev1.PodCondition {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	c := &corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		ObservedGeneration: generation, LastProbeTime: now, LastTransitionTime: now}
	if prev != nil {
		c.LastTransitionTime = prev.LastTransitionTime
		if prev.Reason == reason && prev.Message == message {
			c.LastProbeTime = prev.LastProbeTime
		}
	}
	return c
}

// resizeMessage is upstream's resize event text: a prefix and a JSON
// summary of the containers' resources.
func resizeMessage(prefix string, pod *corev1.Pod, generation int64, errMsg string) string {
	type alloc struct {
		Name      string                      `json:"name"`
		Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	}
	summary := struct {
		InitContainers []alloc `json:"initContainers,omitempty"`
		Containers     []alloc `json:"containers,omitempty"`
		Generation     int64   `json:"generation"`
		Error          string  `json:"error,omitempty"`
	}{Generation: generation, Error: errMsg}
	for _, c := range pod.Spec.InitContainers {
		summary.InitContainers = append(summary.InitContainers, alloc{c.Name, c.Resources})
	}
	for _, c := range pod.Spec.Containers {
		summary.Containers = append(summary.Containers, alloc{c.Name, c.Resources})
	}
	data, err := json.Marshal(summary)
	if err != nil {
		return prefix
	}
	return prefix + ": " + string(data)
}

// cpuMem is the part of a container's resources resize acts on, in the
// units the cgroups use, as upstream compares them.
type cpuMem struct {
	cpuRequest, cpuLimit int64 // millicores
	memRequest, memLimit int64 // bytes
}

func cpuMemOf(r *corev1.ResourceRequirements) cpuMem {
	return cpuMem{
		cpuRequest: r.Requests.Cpu().MilliValue(), cpuLimit: r.Limits.Cpu().MilliValue(),
		memRequest: r.Requests.Memory().Value(), memLimit: r.Limits.Memory().Value(),
	}
}

// resourcesAnnotation is the annotationResources value for c.
func resourcesAnnotation(c *corev1.Container) string {
	data, err := json.Marshal(cpuMemOnly(&c.Resources))
	if err != nil {
		return ""
	}
	return string(data)
}

// cpuMemOnly is r without its other resources and claims.
func cpuMemOnly(r *corev1.ResourceRequirements) corev1.ResourceRequirements {
	pick := func(rl corev1.ResourceList) corev1.ResourceList {
		var out corev1.ResourceList
		for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := rl[n]; ok {
				if out == nil {
					out = corev1.ResourceList{}
				}
				out[n] = q.DeepCopy()
			}
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: pick(r.Requests), Limits: pick(r.Limits)}
}

// actuatedLocked is the cpu and memory resources container cur runs
// with: those set in place last, else those it was created with; false
// when neither is known (a container made before the kubelet recorded
// them). Callers hold k.alloc.mu.
func actuatedLocked(a *podAllocation, cur *runtimeapi.ContainerStatus) (corev1.ResourceRequirements, bool) {
	if r, ok := a.Updated[cur.Id]; ok {
		return r, true
	}
	var r corev1.ResourceRequirements
	if s := cur.Annotations[annotationResources]; s != "" && json.Unmarshal([]byte(s), &r) == nil {
		return r, true
	}
	return corev1.ResourceRequirements{}, false
}

// containerResize is what step 2 does to one running container.
type containerResize struct {
	c       *corev1.Container
	id      string
	have    cpuMem
	want    corev1.ResourceRequirements
	restart bool
}

// resizeActions compares a running container's actuated resources with
// its allocation: nil when they match, else whether its resize policy
// asks for a restart for one of the resources that changed (a resource
// without a policy does not restart, as upstream).
func resizeActions(c *corev1.Container, have corev1.ResourceRequirements) *containerResize {
	h, w := cpuMemOf(&have), cpuMemOf(&c.Resources)
	if h == w {
		return nil
	}
	restartFor := func(n corev1.ResourceName) bool {
		for _, p := range c.ResizePolicy {
			if p.ResourceName == n {
				return p.RestartPolicy == corev1.RestartContainer
			}
		}
		return false
	}
	cpuChanged := h.cpuRequest != w.cpuRequest || h.cpuLimit != w.cpuLimit
	memChanged := h.memRequest != w.memRequest || h.memLimit != w.memLimit
	return &containerResize{c: c, have: h, want: cpuMemOnly(&c.Resources),
		restart: (cpuChanged && restartFor(corev1.ResourceCPU)) || (memChanged && restartFor(corev1.ResourceMemory))}
}

// memoryLimitLowered reports an in-place update that sets a memory limit
// lower than the current one, or a limit where there was none: upstream
// checks those against the container's usage first.
func (r *containerResize) memoryLimitLowered() bool {
	w := r.want.Limits.Memory().Value()
	return w != 0 && (r.have.memLimit == 0 || w < r.have.memLimit)
}

// resize is step 2 for the running containers of the pass's pod (the
// allocated pod). Containers whose policy asks for a restart are
// stopped, and recorded in r.resizeRestart so that they start again at
// once; the others are updated in place. It reports failures in
// PodResizeInProgress and returns only errors worth a retry.
func (r *podRun) resize(ctx context.Context) error {
	k, pod := r.k, r.pod
	var actions []*containerResize
	k.alloc.mu.Lock()
	a := k.allocationLocked(pod)
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			c := &cs[i]
			cur := r.pr.latest(c.Name)
			if !isRunning(cur) {
				continue
			}
			have, ok := actuatedLocked(a, cur)
			if !ok {
				continue // made before resources were recorded: assume the allocation
			}
			if act := resizeActions(c, have); act != nil {
				act.id = cur.Id
				actions = append(actions, act)
			}
		}
	}
	k.alloc.mu.Unlock()
	if len(actions) == 0 {
		return nil
	}

	// Check every lowered memory limit before changing anything, so that
	// a resize is not left half done.
	var errs []error
	for _, act := range actions {
		if act.restart || !act.memoryLimitLowered() {
			continue
		}
		st, err := k.cfg.Runtime.ContainerStats(ctx, act.id)
		if err != nil || st.GetMemory().GetUsageBytes() == nil {
			errs = append(errs, fmt.Errorf("missing container %q memory usage", act.c.Name))
			continue
		}
		usage := st.GetMemory().GetUsageBytes().GetValue()
		if limit := act.want.Limits.Memory().Value(); usage >= uint64(limit) {
			errs = append(errs, fmt.Errorf("attempting to set container %q memory limit (%d) below current usage (%d)", act.c.Name, limit, usage))
		}
	}
	if len(errs) > 0 {
		k.resizeFailed(pod, fmt.Errorf("cannot decrease memory limits: %w", utilerrors.NewAggregate(errs)))
		return nil
	}

	restarted := false
	for _, act := range actions {
		if act.restart {
			k.log.Info("container resize requires restart", "pod", klogRef(pod), "container", act.c.Name)
			if err := k.killContainer(ctx, pod, act.c, act.id, gracePeriodOf(pod, act.c)); err != nil {
				return err
			}
			if r.resizeRestart == nil {
				r.resizeRestart = map[string]bool{}
			}
			r.resizeRestart[act.c.Name] = true
			restarted = true
			continue
		}
		res := &runtimeapi.ContainerResources{Linux: k.resources(pod, act.c)}
		if err := k.cfg.Runtime.UpdateContainerResources(ctx, act.id, res); err != nil {
			k.resizeFailed(pod, fmt.Errorf("updating resources of container %q: %w", act.c.Name, err))
			return nil
		}
		k.alloc.mu.Lock()
		a := k.allocationLocked(pod)
		if a.Updated == nil {
			a.Updated = map[string]corev1.ResourceRequirements{}
		}
		a.Updated[act.id] = act.want
		if err := k.saveAllocationLocked(pod.UID, a); err != nil {
			k.log.Warn("pod allocation record", "pod", klogRef(pod), "err", err)
		}
		k.alloc.mu.Unlock()
		k.log.Info("container resized", "pod", klogRef(pod), "container", act.c.Name)
	}
	if restarted {
		pr, err := k.runtimeState(ctx, pod.UID)
		if err != nil {
			return err
		}
		r.pr = pr
	}
	return nil
}

// resizeFailed records err in PodResizeInProgress (reason Error), keeping
// the generation the resize started at, as upstream.
func (k *Kubelet) resizeFailed(pod *corev1.Pod, err error) {
	k.alloc.mu.Lock()
	a := k.allocationLocked(pod)
	gen := pod.Generation
	if a.inProgress != nil {
		gen = a.inProgress.ObservedGeneration
	}
	prev := a.inProgress
	a.inProgress = resizeCondition(corev1.PodResizeInProgress, corev1.PodReasonError, err.Error(), gen, prev)
	k.alloc.mu.Unlock()
	if prev == nil || prev.Message != err.Error() {
		k.recorder.Event(pod, corev1.EventTypeWarning, eventResizeError, resizeMessage("Pod resize error", pod, gen, err.Error()))
	}
	k.log.Warn("pod resize failed", "pod", klogRef(pod), "err", err)
}

// resizeStatus is step 3: it fills in the containers' allocatedResources
// and resources, and the resize conditions, of st, the status about to
// be written for pod.
func (k *Kubelet) resizeStatus(pod *corev1.Pod, st *corev1.PodStatus, pr *podRuntime) {
	k.alloc.mu.Lock()
	a := k.allocationLocked(pod)
	done := true
	fill := func(statuses []corev1.ContainerStatus) {
		for i := range statuses {
			cs := &statuses[i]
			alloc, ok := a.Containers[cs.Name]
			if !ok || cs.ContainerID == "" {
				continue // upstream reports nothing for a container not created yet
			}
			cs.AllocatedResources = alloc.Requests.DeepCopy()
			res := alloc.DeepCopy()
			cs.Resources = res
			if cs.State.Running == nil {
				continue
			}
			_, id, _ := strings.Cut(cs.ContainerID, "://")
			var cur *runtimeapi.ContainerStatus
			for _, c := range pr.instances(cs.Name) {
				if c.Id == id {
					cur = c
				}
			}
			if cur == nil {
				continue
			}
			have, ok := actuatedLocked(a, cur)
			if !ok {
				continue
			}
			if cpuMemOf(&have) != cpuMemOf(&alloc) {
				done = false
			}
			overlay(res.Requests, have.Requests)
			overlay(res.Limits, have.Limits)
		}
	}
	fill(st.InitContainerStatuses)
	fill(st.ContainerStatuses)
	// Every running container has its allocation: the resize is over
	// (an earlier failure included, when a later resize undid it).
	var completed *corev1.PodCondition
	if done && a.inProgress != nil {
		if a.inProgress.Reason != corev1.PodReasonError {
			completed = a.inProgress
		}
		a.inProgress = nil
	}
	pending, inProgress := a.pending, a.inProgress
	k.alloc.mu.Unlock()

	conds := st.Conditions[:0:0]
	for _, c := range st.Conditions {
		if c.Type != corev1.PodResizePending && c.Type != corev1.PodResizeInProgress {
			conds = append(conds, c)
		}
	}
	if pending != nil {
		conds = append(conds, *pending)
	}
	if inProgress != nil {
		conds = append(conds, *inProgress)
	}
	st.Conditions = conds
	if completed != nil {
		k.recorder.Event(pod, corev1.EventTypeNormal, eventResizeCompleted, resizeMessage("Pod resize completed", pod, completed.ObservedGeneration, ""))
	}
}

// overlay sets the entries of dst that src also has to src's values.
func overlay(dst, src corev1.ResourceList) {
	for n := range dst {
		if q, ok := src[n]; ok {
			dst[n] = q.DeepCopy()
		}
	}
}
