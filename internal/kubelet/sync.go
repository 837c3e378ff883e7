package kubelet

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// errWaiting means a container could not be started now for a reason its
// status shows (image pull, config error, back-off); the sync has been
// re-queued as needed and is not an error to retry at once.
var errWaiting = errors.New("container waiting")

// syncPod reconciles one pod: desired state from the informer, actual
// state from the runtime.
func (k *Kubelet) syncPod(ctx context.Context, uid types.UID) error {
	if k.isTerminating(uid) {
		return nil // the termination re-queues the pod when it is done
	}
	pod := k.pod(uid)
	pr, err := k.runtimeState(ctx, uid)
	if err != nil {
		return err
	}
	switch {
	case pod == nil:
		return k.removePod(ctx, uid, pr)
	case pod.DeletionTimestamp != nil:
		k.startTermination(ctx, pod, pr)
		return nil
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return k.stopTerminal(ctx, pod, pr)
	}
	if ok, err := k.admit(ctx, pod, pr); !ok || err != nil {
		return err // a rejected pod is Failed: its next sync stops there
	}
	if left, ok := deadlineLeft(pod, k.startTime(pod), time.Now()); ok {
		if left <= 0 {
			// stopTerminal's status write sets phase Failed (computeStatus
			// applies the deadline); the pod is not run again.
			k.recorder.Event(pod, corev1.EventTypeNormal, deadlineReason, deadlineMessage)
			return k.stopTerminal(ctx, pod, pr)
		}
		k.queue.AddAfter(uid, left)
	}
	return k.runPod(ctx, k.allocate(pod), pr)
}

// runPod brings a live pod's runtime state to its spec and writes status.
func (k *Kubelet) runPod(ctx context.Context, pod *corev1.Pod, pr *podRuntime) error {
	if err := k.cfg.Volumes.SetUp(ctx, pod); err != nil {
		k.recorder.Event(pod, corev1.EventTypeWarning, "FailedMount", err.Error())
		if serr := k.writeStatus(ctx, pod, pr); serr != nil {
			k.log.Warn("pod status", "pod", klogRef(pod), "err", serr)
		}
		return fmt.Errorf("volumes of pod %s: %w", klogRef(pod), err)
	}
	sb := pr.readySandbox()
	if sb == nil {
		if podFinished(pod, pr) {
			// Every container has run to a state the policy will not
			// restart from: nothing needs a new sandbox.
			return k.writeStatus(ctx, pod, pr)
		}
		var err error
		if sb, err = k.createSandbox(ctx, pod, pr); err != nil {
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			return err
		}
		if pr, err = k.runtimeState(ctx, pod.UID); err != nil {
			return err
		}
	}
	sbCfg, err := k.sandboxConfig(pod, sb.GetMetadata().GetAttempt())
	if err != nil {
		return err
	}
	// Containers whose liveness or startup probe failed are stopped here;
	// the loop below restarts them as their restart policy says.
	if failed := k.cfg.Probes.Failed(pod.UID); len(failed) > 0 {
		for _, f := range failed {
			k.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing",
				"Container %s failed %s probe, will be restarted", f.Container, lowerFirst(f.Kind))
			c := specContainer(pod, f.Container)
			if err := k.killContainer(ctx, pod, c, f.ContainerID, gracePeriodOf(pod, c)); err != nil {
				return err
			}
		}
		if pr, err = k.runtimeState(ctx, pod.UID); err != nil {
			return err
		}
	}
	run := &podRun{k: k, pod: pod, pr: pr, sb: sb, sbCfg: sbCfg}
	if err := run.resize(ctx); err != nil {
		return err
	}
	// Ephemeral containers first (ephemeral.go): they may debug a pod
	// whose initialization fails.
	ephemeralErr := run.ephemeralContainers(ctx)
	initialized, err := run.initContainers(ctx)
	if initialized {
		err = errors.Join(err, run.containers(ctx))
	}
	err = errors.Join(ephemeralErr, err)
	if err := withoutWaiting(err); err != nil {
		return err
	}
	if pr, err = k.runtimeState(ctx, pod.UID); err != nil {
		return err
	}
	k.cfg.Probes.Sync(pod, probeTargets(pr))
	if err := k.collectGarbage(ctx, pod, pr); err != nil {
		k.log.Warn("container garbage collection", "pod", klogRef(pod), "err", err)
	}
	return k.writeStatus(ctx, pod, pr)
}

// podRun is one pass over a pod's containers inside its ready sandbox.
type podRun struct {
	k     *Kubelet
	pod   *corev1.Pod
	pr    *podRuntime
	sb    *runtimeapi.PodSandbox
	sbCfg *runtimeapi.PodSandboxConfig
	// resizeRestart names the containers stopped for a resize: they
	// start again at once, whatever the restart policy and back-off.
	resizeRestart map[string]bool
}

// initContainers runs the init containers one at a time, in order. It
// reports true once all have succeeded, or once the app containers have
// been created (initialization is over and is not run again).
//
// A sidecar (restartable init container) starts in its turn; the next init
// container waits until it has started (its startup probe, when it has
// one, has succeeded), and it keeps running beside the app containers: it
// is restarted whenever it exits, whatever the pod's restartPolicy. The
// error of a sidecar's restart after initialization does not hold back the
// app containers.
func (r *podRun) initContainers(ctx context.Context) (bool, error) {
	initialized := appStarted(r.pod, r.pr)
	var errs []error
	for i := range r.pod.Spec.InitContainers {
		c := &r.pod.Spec.InitContainers[i]
		cur := r.pr.latest(c.Name)
		if isSidecar(c) {
			if isRunning(cur) {
				if initialized || r.k.sidecarStarted(r.pod, c) {
					continue
				}
				return false, nil // its startup probe's success queues the pod
			}
			err := r.start(ctx, c, cur)
			switch {
			case initialized:
				errs = append(errs, err)
			case err != nil || c.StartupProbe != nil:
				return false, err
			}
			continue
		}
		if initialized {
			continue
		}
		switch {
		case isExited(cur) && cur.ExitCode == 0:
			continue // done; the next one may start
		case isRunning(cur):
			return false, nil // wait for it to exit (the relist notices)
		case isExited(cur) && r.pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return false, nil // failed for good: the pod is Failed
		}
		return false, r.start(ctx, c, cur)
	}
	return true, errors.Join(errs...)
}

// isSidecar reports a restartable init container (restartPolicy Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// sidecarSpec is the init container named name when it is a sidecar.
func sidecarSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.Name == name && isSidecar(c) {
			return c
		}
	}
	return nil
}

// sidecarStarted reports whether the running sidecar c counts as started:
// without a startup probe at once, with one once it has succeeded.
func (k *Kubelet) sidecarStarted(pod *corev1.Pod, c *corev1.Container) bool {
	return c.StartupProbe == nil || k.cfg.Probes.Started(pod.UID, c.Name)
}

// appStarted reports whether any app container of pod has been created:
// its initialization is then over, as upstream's kubelet decides it.
func appStarted(pod *corev1.Pod, pr *podRuntime) bool {
	for _, c := range pod.Spec.Containers {
		if pr.latest(c.Name) != nil {
			return true
		}
	}
	return false
}

// withoutWaiting drops errWaiting from err (which may join the errors of
// several containers): what remains is worth a rate-limited retry.
func withoutWaiting(err error) error {
	if err == nil || err == errWaiting {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range j.Unwrap() {
			if e = withoutWaiting(e); e != nil {
				rest = append(rest, e)
			}
		}
		return errors.Join(rest...)
	}
	return err
}

// containers starts every container that should run and does not.
func (r *podRun) containers(ctx context.Context) error {
	var errs []error
	for i := range r.pod.Spec.Containers {
		c := &r.pod.Spec.Containers[i]
		cur := r.pr.latest(c.Name)
		if isRunning(cur) {
			continue
		}
		if cur != nil && !shouldRestart(r.pod.Spec.RestartPolicy, cur) && !r.resizeRestart[c.Name] {
			continue
		}
		if err := r.start(ctx, c, cur); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shouldRestart reports whether a stopped container runs again.
func shouldRestart(policy corev1.RestartPolicy, cur *runtimeapi.ContainerStatus) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return !(isExited(cur) && cur.ExitCode == 0)
	}
	return true
}

// start creates and starts a new instance of c, unless the previous
// instance prev is still in its crash-loop back-off.
func (r *podRun) start(ctx context.Context, c *corev1.Container, prev *runtimeapi.ContainerStatus) error {
	k, pod := r.k, r.pod
	key := waitKey(pod.UID, c.Name)
	if prev != nil && !r.resizeRestart[c.Name] {
		finished := time.Unix(0, prev.FinishedAt)
		if prev.FinishedAt == 0 {
			finished = time.Unix(0, prev.CreatedAt)
		}
		if left := k.backoff.remaining(key, finished); left > 0 {
			k.setWaiting(key, "CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				k.backoff.current(key), c.Name, pod.Name, pod.Namespace, pod.UID))
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)",
				c.Name, pod.Name, pod.Namespace, pod.UID)
			k.queue.AddAfter(pod.UID, left)
			return errWaiting
		}
		k.backoff.next(key, finished, time.Unix(0, prev.StartedAt))
	}
	if err := r.ensureImageVolumes(ctx, c); err != nil {
		return err
	}
	imageRef, err := k.ensureImage(ctx, pod, c, r.sbCfg)
	if err != nil {
		return err
	}
	attempt := r.pr.nextAttempt(c.Name)
	cfg, err := k.containerConfig(ctx, pod, c, attempt, imageRef, r.pr.podIPs())
	if err == nil {
		err = r.targetNamespace(c, cfg)
	}
	if err != nil {
		k.setWaiting(key, "CreateContainerConfigError", err.Error())
		k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		k.queue.AddAfter(pod.UID, 2*time.Second)
		return errWaiting
	}
	id, err := k.cfg.Runtime.CreateContainer(ctx, r.sb.Id, cfg, r.sbCfg)
	if err != nil {
		k.setWaiting(key, "CreateContainerError", err.Error())
		k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return fmt.Errorf("creating container %s of pod %s: %w", c.Name, klogRef(pod), err)
	}
	k.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if err := k.cfg.Runtime.StartContainer(ctx, id); err != nil {
		k.setWaiting(key, "RunContainerError", err.Error())
		k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return fmt.Errorf("starting container %s of pod %s: %w", c.Name, klogRef(pod), err)
	}
	k.clearWaiting(key)
	k.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if msg, err := k.runHook(ctx, pod, c, id, c.Lifecycle.PostStart, r.pr.podIPs(), gracePeriodOf(pod, c)); err != nil {
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed: %s", msg)
			if kerr := k.killContainer(ctx, pod, nil, id, gracePeriodOf(pod, c)); kerr != nil {
				return kerr
			}
		}
	}
	return nil
}

// podFinished reports whether every container (after the init containers)
// has exited in a way the restart policy leaves alone, or an init
// container failed under restartPolicy Never.
func podFinished(pod *corev1.Pod, pr *podRuntime) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		return false
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) {
			continue // it serves the app containers and stops after them
		}
		cur := pr.latest(c.Name)
		if isExited(cur) && cur.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return true
		}
	}
	for _, c := range pod.Spec.Containers {
		cur := pr.latest(c.Name)
		if cur == nil || !isExited(cur) || shouldRestart(pod.Spec.RestartPolicy, cur) {
			return false
		}
	}
	return true
}

// probeTargets are the running containers of the ready sandbox.
func probeTargets(pr *podRuntime) map[string]ProbeTarget {
	ip := ""
	if ips := pr.podIPs(); len(ips) > 0 {
		ip = ips[0]
	}
	out := map[string]ProbeTarget{}
	for _, c := range pr.running() {
		name := c.GetMetadata().GetName()
		if _, seen := out[name]; seen {
			continue
		}
		out[name] = ProbeTarget{ID: c.Id, StartedAt: time.Unix(0, c.StartedAt), PodIP: ip}
	}
	return out
}

func specContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	if ec := ephemeralSpec(pod, name); ec != nil {
		return asContainer(ec)
	}
	return nil
}

func waitKey(uid types.UID, container string) string { return string(uid) + "/" + container }

func (k *Kubelet) setWaiting(key, reason, message string) {
	k.mu.Lock()
	k.waiting[key] = waitingState{reason: reason, message: message}
	k.mu.Unlock()
}

func (k *Kubelet) clearWaiting(key string) {
	k.mu.Lock()
	delete(k.waiting, key)
	k.mu.Unlock()
}

func (k *Kubelet) waitingFor(key string) (waitingState, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.waiting[key]
	return w, ok
}

func klogRef(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}
