package kubelet

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the kubelet puts on sandboxes and containers, as upstream's, so
// that tools like crictl show the same names.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	annotationRestarts = "io.kubernetes.container.restartCount"
	annotationTermPath = "io.kubernetes.container.terminationMessagePath"
	annotationTermFile = "skiff.io/termination-message-file"
)

// podRuntime is what the runtime holds for one pod UID: its sandboxes
// (newest first) and its containers with their statuses (newest first).
type podRuntime struct {
	sandboxes  []*runtimeapi.PodSandbox
	containers []*runtimeapi.ContainerStatus
	sandboxIPs map[string][]string // sandbox id -> IPs
}

// runtimeState lists the runtime's sandboxes and containers for uid.
func (k *Kubelet) runtimeState(ctx context.Context, uid types.UID) (*podRuntime, error) {
	sel := map[string]string{labelPodUID: string(uid)}
	sbs, err := k.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes of pod %s: %w", uid, err)
	}
	cs, err := k.cfg.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing containers of pod %s: %w", uid, err)
	}
	pr := &podRuntime{sandboxes: sbs, sandboxIPs: map[string][]string{}}
	sort.Slice(pr.sandboxes, func(i, j int) bool { return pr.sandboxes[i].CreatedAt > pr.sandboxes[j].CreatedAt })
	for _, c := range cs {
		st, err := k.cfg.Runtime.ContainerStatus(ctx, c.Id, false)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("status of container %s: %w", c.Id, err)
		}
		if st.Status == nil {
			continue
		}
		if st.Status.Labels == nil {
			st.Status.Labels = c.Labels
		}
		if st.Status.Annotations == nil {
			st.Status.Annotations = c.Annotations
		}
		pr.containers = append(pr.containers, st.Status)
	}
	sort.Slice(pr.containers, func(i, j int) bool {
		a, b := pr.containers[i], pr.containers[j]
		if a.GetMetadata().GetAttempt() != b.GetMetadata().GetAttempt() {
			return a.GetMetadata().GetAttempt() > b.GetMetadata().GetAttempt()
		}
		return a.CreatedAt > b.CreatedAt
	})
	if sb := pr.readySandbox(); sb != nil {
		st, err := k.cfg.Runtime.PodSandboxStatus(ctx, sb.Id, false)
		if err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("status of sandbox %s: %w", sb.Id, err)
		}
		if st != nil && st.Status != nil && st.Status.Network != nil && st.Status.Network.Ip != "" {
			ips := []string{st.Status.Network.Ip}
			for _, ip := range st.Status.Network.AdditionalIps {
				ips = append(ips, ip.Ip)
			}
			pr.sandboxIPs[sb.Id] = ips
		}
	}
	return pr, nil
}

// readySandbox is the newest sandbox if it is ready, else nil.
func (pr *podRuntime) readySandbox() *runtimeapi.PodSandbox {
	if len(pr.sandboxes) == 0 || pr.sandboxes[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil
	}
	return pr.sandboxes[0]
}

// podIPs are the IPs of the ready sandbox.
func (pr *podRuntime) podIPs() []string {
	if sb := pr.readySandbox(); sb != nil {
		return pr.sandboxIPs[sb.Id]
	}
	return nil
}

// instances are the containers named name, newest first.
func (pr *podRuntime) instances(name string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range pr.containers {
		if c.GetMetadata().GetName() == name {
			out = append(out, c)
		}
	}
	return out
}

// latest is the newest container named name, or nil.
func (pr *podRuntime) latest(name string) *runtimeapi.ContainerStatus {
	if in := pr.instances(name); len(in) > 0 {
		return in[0]
	}
	return nil
}

// running lists the running containers.
func (pr *podRuntime) running() []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range pr.containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			out = append(out, c)
		}
	}
	return out
}

// nextAttempt is the attempt number (= restartCount) for a new container
// named name: one more than the newest, across sandboxes.
func (pr *podRuntime) nextAttempt(name string) uint32 {
	if c := pr.latest(name); c != nil {
		return c.GetMetadata().GetAttempt() + 1
	}
	return 0
}

// fingerprint summarises the container states, so the relist notices any
// start or exit.
func (pr *podRuntime) fingerprint() string {
	var b strings.Builder
	for _, s := range pr.sandboxes {
		fmt.Fprintf(&b, "%s:%d;", s.Id, s.State)
	}
	for _, c := range pr.containers {
		fmt.Fprintf(&b, "%s:%d;", c.Id, c.State)
	}
	return b.String()
}
