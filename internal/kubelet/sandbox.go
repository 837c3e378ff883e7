package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-io/skiff/internal/kubelet/cgroup"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/node/util/sysctl"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// createSandbox starts a new sandbox for pod, after stopping the old ones
// and the containers left in them.
func (k *Kubelet) createSandbox(ctx context.Context, pod *corev1.Pod, pr *podRuntime) (*runtimeapi.PodSandbox, error) {
	attempt := uint32(0)
	if len(pr.sandboxes) > 0 {
		attempt = pr.sandboxes[0].GetMetadata().GetAttempt() + 1
	}
	for _, c := range pr.running() {
		if err := k.killContainer(ctx, pod, specContainer(pod, c.GetMetadata().GetName()), c.Id, 2); err != nil {
			return nil, err
		}
	}
	for _, sb := range pr.sandboxes {
		if err := k.cfg.Runtime.StopPodSandbox(ctx, sb.Id); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("stopping old sandbox %s: %w", sb.Id, err)
		}
	}
	cfg, err := k.sandboxConfig(pod, attempt)
	if err != nil {
		return nil, err
	}
	_, _ = k.dnsConfig(pod, true) // the MissingClusterDNS event, once per sandbox
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return nil, fmt.Errorf("pod log directory: %w", err)
	}
	if err := k.writeHosts(pod); err != nil {
		return nil, err
	}
	handler, err := k.runtimeHandler(ctx, pod)
	if err != nil {
		return nil, err
	}
	id, err := k.cfg.Runtime.RunPodSandbox(ctx, cfg, handler)
	if err != nil {
		return nil, err
	}
	k.log.Info("sandbox started", "pod", klogRef(pod), "sandbox", id, "attempt", attempt)
	return &runtimeapi.PodSandbox{Id: id, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY}, nil
}

// runtimeHandler is the CRI runtime handler pod's sandbox runs with: its
// RuntimeClass's handler ("runc" is containerd's default runtime), the
// node's default for a pod without one. A class that does not exist fails
// the sandbox, as upstream's kubelet does.
func (k *Kubelet) runtimeHandler(ctx context.Context, pod *corev1.Pod) (string, error) {
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName == "" {
		return k.cfg.RuntimeHandler, nil
	}
	name := *pod.Spec.RuntimeClassName
	rc, err := k.cfg.Client.NodeV1().RuntimeClasses().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("runtime class %q: %w", name, err)
	}
	return rc.Handler, nil
}

// sandboxConfig is the CRI description of pod's sandbox. It is a pure
// function of the pod (and attempt), because CreateContainer needs it too.
func (k *Kubelet) sandboxConfig(pod *corev1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	dns, err := k.dnsConfig(pod, false)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for key, v := range pod.Labels {
		labels[key] = v
	}
	labels[labelPodName] = pod.Name
	labels[labelPodNamespace] = pod.Namespace
	labels[labelPodUID] = string(pod.UID)
	annotations := map[string]string{}
	for key, v := range pod.Annotations {
		annotations[key] = v
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     podHostname(pod),
		LogDirectory: k.podLogDir(pod),
		DnsConfig:    dns,
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    cgroup.PodParent(k.cfg.CgroupRoot, pod), // removePodCgroups removes it
			SecurityContext: k.sandboxSecurity(pod),
		},
	}
	if psc := pod.Spec.SecurityContext; psc != nil && len(psc.Sysctls) > 0 {
		// The runtime writes them in the sandbox's namespaces; a name may
		// use '/' as its separator, which runc does not take, so it is
		// turned into the dotted form as upstream's kubelet does.
		cfg.Linux.Sysctls = map[string]string{}
		for _, s := range psc.Sysctls {
			cfg.Linux.Sysctls[sysctl.NormalizeName(s.Name)] = s.Value
		}
	}
	if pod.Spec.HostNetwork {
		cfg.Hostname = "" // the node's own
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{
				Protocol: protocolOf(p.Protocol), ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP,
			})
		}
	}
	return cfg, nil
}

func (k *Kubelet) sandboxSecurity(pod *corev1.Pod) *runtimeapi.LinuxSandboxSecurityContext {
	sc := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = append(sc.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			sc.Privileged = true
		}
	}
	return sc
}

func namespaceOptions(pod *corev1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	} else if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

// podHostname is the pod's hostname as upstream derives it: spec.hostname,
// else the pod name, cut to 63 characters without a trailing '-' or '.'.
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// podLogDir is where the runtime writes the pod's container logs, named as
// upstream's /var/log/pods/<namespace>_<name>_<uid>.
func (k *Kubelet) podLogDir(pod *corev1.Pod) string {
	return filepath.Join(k.cfg.RootDir, "logs", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

// podDir holds the kubelet's own files for a pod: etc-hosts, termination
// messages.
func (k *Kubelet) podDir(uid string) string {
	return filepath.Join(k.cfg.RootDir, "pods", uid)
}

func protocolOf(p corev1.Protocol) runtimeapi.Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case corev1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	}
	return runtimeapi.Protocol_TCP
}

// writeHosts writes the pod's managed /etc/hosts, as upstream's kubelet
// does: localhost entries, the pod's own name on its IP (written once the
// IP is known, see hostsContent), and spec.hostAliases.
func (k *Kubelet) writeHosts(pod *corev1.Pod) error {
	dir := k.podDir(string(pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod directory: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "etc-hosts"), []byte(hostsContent(pod, nil, k.cfg.ClusterDomain)), 0o644)
}

// updateHosts rewrites etc-hosts with the pod IPs once the sandbox has them.
func (k *Kubelet) updateHosts(pod *corev1.Pod, ips []string) error {
	path := filepath.Join(k.podDir(string(pod.UID)), "etc-hosts")
	want := hostsContent(pod, ips, k.cfg.ClusterDomain)
	if cur, err := os.ReadFile(path); err == nil && string(cur) == want {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Rewrite in place: the file is bind-mounted into running containers,
	// and a rename would leave them with the old inode.
	return os.WriteFile(path, []byte(want), 0o644)
}

func hostsContent(pod *corev1.Pod, ips []string, domain string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	name := podHostname(pod)
	if pod.Spec.Subdomain != "" {
		name = fmt.Sprintf("%s.%s.%s.svc.%s\t%s", name, pod.Spec.Subdomain, pod.Namespace, domain, name)
	}
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.String()
}
