package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// minGracePeriod is the least time a container gets between SIGTERM and
// SIGKILL, as upstream (a grace period of 0 still means 2 s here; only the
// API object goes at once).
const minGracePeriod = 2

// gracePeriodOf is how long container c of pod gets to stop: the deletion's
// grace period, else the pod's terminationGracePeriodSeconds.
func gracePeriodOf(pod *corev1.Pod, c *corev1.Container) int64 {
	g := int64(30)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.DeletionGracePeriodSeconds != nil {
		g = *pod.DeletionGracePeriodSeconds
	}
	if g < minGracePeriod {
		g = minGracePeriod
	}
	return g
}

// killContainer stops container id: the preStop hook first (when c has
// one), then SIGTERM, and SIGKILL when the grace period has run out.
func (k *Kubelet) killContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace int64) error {
	name := ""
	if c != nil {
		name = c.Name
		k.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
	}
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		start := time.Now()
		if msg, err := k.runHook(ctx, pod, c, id, c.Lifecycle.PreStop, statusIPs(pod), grace); err != nil {
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %s", msg)
		}
		grace -= int64(time.Since(start).Seconds())
		if grace < minGracePeriod {
			grace = minGracePeriod
		}
	}
	if err := k.cfg.Runtime.StopContainer(ctx, id, grace); err != nil && !isNotFound(err) {
		return fmt.Errorf("stopping container %s (%s) of pod %s: %w", name, id, klogRef(pod), err)
	}
	return nil
}

func (k *Kubelet) isTerminating(uid types.UID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.terminating[uid]
}

// startTermination stops a deleted pod's containers in the background
// (graceful stops take up to the grace period and must not hold a sync
// worker), then deletes the pod object for good.
func (k *Kubelet) startTermination(ctx context.Context, pod *corev1.Pod, pr *podRuntime) {
	k.mu.Lock()
	if k.terminating[pod.UID] {
		k.mu.Unlock()
		return
	}
	k.terminating[pod.UID] = true
	k.mu.Unlock()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		err := k.terminate(ctx, pod, pr)
		k.mu.Lock()
		delete(k.terminating, pod.UID)
		k.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				k.log.Warn("terminating pod", "pod", klogRef(pod), "err", err)
			}
			k.queue.AddRateLimited(pod.UID)
			return
		}
		k.queue.Add(pod.UID)
	}()
}

func (k *Kubelet) terminate(ctx context.Context, pod *corev1.Pod, pr *podRuntime) error {
	k.cfg.Probes.RemovePod(pod.UID)
	if len(pr.running()) > 0 {
		k.awaitEndpointsReleased(ctx, pod)
	}
	if err := k.killAll(ctx, pod, pr); err != nil {
		return err
	}
	for _, sb := range pr.sandboxes {
		if err := k.cfg.Runtime.StopPodSandbox(ctx, sb.Id); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping sandbox of pod %s: %w", klogRef(pod), err)
		}
	}
	pr, err := k.runtimeState(ctx, pod.UID)
	if err != nil {
		return err
	}
	if err := k.writeStatus(ctx, pod, pr); err != nil && !apierrors.IsNotFound(err) {
		k.log.Warn("final pod status", "pod", klogRef(pod), "err", err)
	}
	// The containers are gone: the API object may go too.
	err = k.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting pod %s: %w", klogRef(pod), err)
	}
	return nil
}

// stopTerminal stops what still runs of a pod that has Succeeded or Failed
// (or has run past its activeDeadlineSeconds, which computeStatus turns
// into Failed) and releases its sandbox (its IP); the containers stay for
// their logs. When it stopped anything it writes the status again, so that
// the containers show as terminated.
func (k *Kubelet) stopTerminal(ctx context.Context, pod *corev1.Pod, pr *podRuntime) error {
	k.cfg.Probes.RemovePod(pod.UID)
	stopped := len(pr.running()) > 0
	if err := k.killAll(ctx, pod, pr); err != nil {
		return err
	}
	for _, sb := range pr.sandboxes {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			stopped = true
			if err := k.cfg.Runtime.StopPodSandbox(ctx, sb.Id); err != nil && !isNotFound(err) {
				return fmt.Errorf("stopping sandbox of pod %s: %w", klogRef(pod), err)
			}
		}
	}
	if !stopped && pod.Status.Phase != corev1.PodPending && pod.Status.Phase != corev1.PodRunning {
		return nil
	}
	pr, err := k.runtimeState(ctx, pod.UID)
	if err != nil {
		return err
	}
	return k.writeStatus(ctx, pod, pr)
}

// killAll stops every running container of pod: the app containers (and a
// running init container) at once, each after its preStop hook, then the
// sidecars one at a time in the reverse of their order, as upstream does:
// a sidecar keeps serving the app containers (their preStop hooks too)
// until they have stopped. The sidecars get what is left of the grace
// period.
func (k *Kubelet) killAll(ctx context.Context, pod *corev1.Pod, pr *podRuntime) error {
	begin := time.Now()
	running := pr.running()
	errs := make([]error, len(running))
	sidecars := map[string]string{} // name -> running container ID
	var wg sync.WaitGroup
	for i, c := range running {
		name := c.GetMetadata().GetName()
		if sidecarSpec(pod, name) != nil {
			sidecars[name] = c.Id
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := specContainer(pod, name)
			errs[i] = k.killContainer(ctx, pod, spec, c.Id, gracePeriodOf(pod, spec))
		}()
	}
	wg.Wait()
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		id, ok := sidecars[c.Name]
		if !ok {
			continue
		}
		grace := max(gracePeriodOf(pod, c)-int64(time.Since(begin).Seconds()), minGracePeriod)
		errs = append(errs, k.killContainer(ctx, pod, c, id, grace))
	}
	return errors.Join(errs...)
}

// removePod removes everything of a pod the API no longer has: its
// containers, sandboxes, volumes, files and cgroups.
func (k *Kubelet) removePod(ctx context.Context, uid types.UID, pr *podRuntime) error {
	k.cfg.Probes.RemovePod(uid)
	for _, c := range pr.running() {
		if err := k.cfg.Runtime.StopContainer(ctx, c.Id, minGracePeriod); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping container %s of removed pod %s: %w", c.Id, uid, err)
		}
	}
	for _, sb := range pr.sandboxes {
		if err := k.cfg.Runtime.StopPodSandbox(ctx, sb.Id); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping sandbox of removed pod %s: %w", uid, err)
		}
		if err := k.cfg.Runtime.RemovePodSandbox(ctx, sb.Id); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing sandbox of removed pod %s: %w", uid, err)
		}
	}
	if err := k.cfg.Volumes.TearDown(uid); err != nil {
		return fmt.Errorf("volumes of removed pod %s: %w", uid, err)
	}
	if err := os.RemoveAll(k.podDir(string(uid))); err != nil {
		return fmt.Errorf("files of removed pod %s: %w", uid, err)
	}
	k.removeLogDirs(uid)
	k.forgetAllocation(uid)
	removePodCgroups(k.cfg.CgroupRoot, uid)
	k.backoff.forget(string(uid) + "/")
	k.backoff.forget("pull/" + string(uid) + "/")
	k.mu.Lock()
	for key := range k.waiting {
		if strings.HasPrefix(key, string(uid)+"/") {
			delete(k.waiting, key)
		}
	}
	for key := range k.pullFailed {
		if strings.Contains(key, string(uid)+"/") {
			delete(k.pullFailed, key)
		}
	}
	delete(k.firstSeen, uid)
	delete(k.startObserved, uid)
	k.mu.Unlock()
	return nil
}

// removeLogDirs removes the log directories of pod uid.
func (k *Kubelet) removeLogDirs(uid types.UID) {
	dirs, _ := filepath.Glob(filepath.Join(k.cfg.RootDir, "logs", "*_"+string(uid)))
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

// collectOrphans removes volume state of pods that are neither known nor
// in the runtime (a kubelet that was down while its pods were deleted).
func (k *Kubelet) collectOrphans(ctx context.Context) {
	uids, err := k.cfg.Volumes.PodUIDsOnDisk()
	if err != nil {
		k.log.Warn("listing pod volumes", "err", err)
		return
	}
	for _, uid := range uids {
		if k.pod(uid) != nil || k.isTerminating(uid) {
			continue
		}
		k.enqueue(uid, workSync) // syncPod with no pod removes what is left
	}
}

// isNotFound reports a CRI NotFound, which stop and remove treat as done
// (containerd 1.6 returns it for unknown IDs where CRI says success).
func isNotFound(err error) bool {
	return status.Code(err) == codes.NotFound || strings.Contains(err.Error(), "not found")
}

// statusIPs are the pod IPs the API knows.
func statusIPs(pod *corev1.Pod) []string {
	var out []string
	for _, ip := range pod.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && pod.Status.PodIP != "" {
		out = append(out, pod.Status.PodIP)
	}
	return out
}

// endpointGrace bounds how long a deleted pod's containers wait for its
// endpoints to leave the Services before they get SIGTERM, and
// endpointPropagation is the time given to the nodes' proxies after that.
const (
	endpointGrace       = 5 * time.Second
	endpointPropagation = time.Second
)

// awaitEndpointsReleased holds a deleted pod's termination until no
// EndpointSlice lists it as ready any more, plus a moment for the proxies to
// apply that, so that no new connection reaches a container that is
// stopping. It waits at most endpointGrace or half the grace period. Upstream
// sends SIGTERM at once and leaves this to a preStop hook; skiff does it
// for every pod that is an endpoint of a Service (docs/compatibility.md).
func (k *Kubelet) awaitEndpointsReleased(ctx context.Context, pod *corev1.Pod) {
	if k.cfg.PodEndpoints == nil {
		return
	}
	listed, ready := k.cfg.PodEndpoints(pod)
	if !listed {
		return // not behind any Service: nothing to wait for
	}
	wait := min(endpointGrace, time.Duration(gracePeriodOf(pod, nil))*time.Second/2)
	deadline := time.Now().Add(wait)
	for ready {
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		_, ready = k.cfg.PodEndpoints(pod)
	}
	select {
	case <-ctx.Done():
	case <-time.After(min(endpointPropagation, time.Until(deadline))):
	}
}
