package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerConfig is the CRI description of instance attempt of container
// c. Its errors are CreateContainerConfigError messages.
func (k *Kubelet) containerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, attempt uint32, img imageInfo, podIPs []string) (*runtimeapi.ContainerConfig, error) {
	if err := checkAppArmor(pod, c); err != nil {
		return nil, err
	}
	env, err := k.cfg.Env(ctx, pod, c, EnvInputs{
		PodIPs: podIPs, HostIPs: []string{k.cfg.NodeIP}, NodeName: k.cfg.NodeName, NodeAllocatable: k.allocatable(),
	})
	if err != nil {
		return nil, err
	}
	envMap := map[string]string{}
	for _, kv := range env {
		envMap[kv.Key] = string(kv.Value)
	}
	mounts, err := k.cfg.Volumes.Mounts(pod, c, envMap)
	if err != nil {
		return nil, err
	}
	mounts = append(mounts, k.hostsMount(pod, c, mounts)...)
	termFile, termMount, err := k.terminationMessage(pod, c, attempt)
	if err != nil {
		return nil, err
	}
	if termMount != nil {
		mounts = append(mounts, termMount)
	}
	linux, err := k.linuxConfig(pod, c, img.uid)
	if err != nil {
		return nil, err
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: img.ref, UserSpecifiedImage: c.Image},
		Command:    expandAll(k.cfg.Expand, c.Command, envMap),
		Args:       expandAll(k.cfg.Expand, c.Args, envMap),
		WorkingDir: c.WorkingDir,
		Envs:       env,
		Mounts:     mounts,
		LogPath:    filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:      c.Stdin,
		StdinOnce:  c.StdinOnce,
		Tty:        c.TTY,
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID),
			labelContainerName: c.Name,
		},
		Annotations: map[string]string{
			annotationRestarts:  strconv.Itoa(int(attempt)),
			annotationTermPath:  c.TerminationMessagePath,
			annotationTermFile:  termFile,
			annotationResources: resourcesAnnotation(c),
		},
		Linux: linux,
	}
	return cfg, nil
}

func expandAll(expand func(string, map[string]string) string, in []string, env map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, env)
	}
	return out
}

// hostsMount bind-mounts the pod's managed /etc/hosts, unless the pod
// uses the host's network or the container mounts its own.
func (k *Kubelet) hostsMount(pod *corev1.Pod, c *corev1.Container, mounts []*runtimeapi.Mount) []*runtimeapi.Mount {
	if pod.Spec.HostNetwork {
		return nil
	}
	for _, m := range mounts {
		if m.ContainerPath == "/etc/hosts" {
			return nil
		}
	}
	return []*runtimeapi.Mount{{ContainerPath: "/etc/hosts", HostPath: filepath.Join(k.podDir(string(pod.UID)), "etc-hosts")}}
}

// terminationMessage creates the file the container may write its
// termination message to, mounted at terminationMessagePath.
func (k *Kubelet) terminationMessage(pod *corev1.Pod, c *corev1.Container, attempt uint32) (string, *runtimeapi.Mount, error) {
	if c.TerminationMessagePath == "" {
		return "", nil, nil
	}
	dir := filepath.Join(k.podDir(string(pod.UID)), "containers", c.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("termination message directory: %w", err)
	}
	path := filepath.Join(dir, strconv.Itoa(int(attempt)))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o666)
	if err != nil {
		return "", nil, fmt.Errorf("termination message file: %w", err)
	}
	_ = f.Close()
	_ = os.Chmod(path, 0o666) // any container user may write it
	return path, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: path}, nil
}

// linuxConfig turns resources and the effective security context into
// their CRI forms.
func (k *Kubelet) linuxConfig(pod *corev1.Pod, c *corev1.Container, imageUID *int64) (*runtimeapi.LinuxContainerConfig, error) {
	sc, err := securityContext(pod, c, imageUID)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.LinuxContainerConfig{Resources: k.resources(pod, c), SecurityContext: sc}, nil
}

// resources are upstream's cgroup settings for a container: cpu shares from
// the request, a CFS quota from the limit, the memory limit and the OOM
// score adjustment of the pod's QoS class.
func (k *Kubelet) resources(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerResources {
	const period = 100000
	r := &runtimeapi.LinuxContainerResources{CpuPeriod: period}
	req := c.Resources.Requests.Cpu().MilliValue()
	if req == 0 && !c.Resources.Limits.Cpu().IsZero() {
		req = c.Resources.Limits.Cpu().MilliValue()
	}
	shares := req * 1024 / 1000
	if shares < 2 {
		shares = 2
	}
	r.CpuShares = shares
	if lim := c.Resources.Limits.Cpu().MilliValue(); lim > 0 {
		q := lim * period / 1000
		if q < 1000 {
			q = 1000
		}
		r.CpuQuota = q
	}
	if lim := c.Resources.Limits.Memory().Value(); lim > 0 {
		r.MemoryLimitInBytes = lim
	}
	alloc := k.allocatable()
	r.OomScoreAdj = oomScoreAdj(pod, c, alloc.Memory().Value())
	return r
}

// oomScoreAdj follows upstream's policy: Guaranteed -997, BestEffort 1000,
// Burstable scaled by the memory request. (containerd clamps it to its own
// score where lowering is not allowed; see docs/compatibility.md.)
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, memCapacity int64) int64 {
	switch pod.Status.QOSClass {
	case corev1.PodQOSGuaranteed:
		return -997
	case corev1.PodQOSBestEffort:
		return 1000
	}
	if memCapacity <= 0 {
		return 999
	}
	adj := 1000 - (1000*c.Resources.Requests.Memory().Value())/memCapacity
	if adj < 2 {
		adj = 2
	}
	if adj > 999 {
		adj = 999
	}
	return adj
}

// Paths upstream's kubelet masks or makes read-only in unprivileged
// containers (procMount Default).
var (
	maskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap"}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// securityContext merges the pod's and the container's security contexts
// (the container's fields win) into CRI's.
// imageUID is the numeric user the image runs as (nil: unknown or a name).
func securityContext(pod *corev1.Pod, c *corev1.Container, imageUID *int64) (*runtimeapi.LinuxContainerSecurityContext, error) {
	out := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	runAsUser, runAsGroup, nonRoot := psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
	if csc.RunAsUser != nil {
		runAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		runAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		nonRoot = csc.RunAsNonRoot
	}
	if nonRoot != nil && *nonRoot {
		user := runAsUser
		if user == nil {
			user = imageUID
		}
		if user == nil {
			return nil, fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)",
				pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
		}
		if runAsUser == nil && *user == 0 {
			return nil, fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)",
				pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
		}
		if *user == 0 {
			return nil, fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)",
				pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
		}
	}
	if runAsUser != nil {
		out.RunAsUser = &runtimeapi.Int64Value{Value: *runAsUser}
	}
	if runAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *runAsGroup}
	}
	out.SupplementalGroups = append(out.SupplementalGroups, psc.SupplementalGroups...)
	if psc.FSGroup != nil {
		out.SupplementalGroups = append(out.SupplementalGroups, *psc.FSGroup)
	}
	if csc.Privileged != nil {
		out.Privileged = *csc.Privileged
	}
	if csc.ReadOnlyRootFilesystem != nil {
		out.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
	}
	if csc.AllowPrivilegeEscalation != nil {
		out.NoNewPrivs = !*csc.AllowPrivilegeEscalation
	}
	if caps := csc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{}
		for _, a := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(a))
		}
		for _, d := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(d))
		}
	}
	seccomp := psc.SeccompProfile
	if csc.SeccompProfile != nil {
		seccomp = csc.SeccompProfile
	}
	if seccomp != nil {
		switch seccomp.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			out.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		case corev1.SeccompProfileTypeUnconfined:
			out.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
		case corev1.SeccompProfileTypeLocalhost:
			if seccomp.LocalhostProfile == nil {
				return nil, errors.New("localhost seccomp profile needs localhostProfile")
			}
			out.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: *seccomp.LocalhostProfile}
		}
	}
	unmasked := csc.ProcMount != nil && *csc.ProcMount == corev1.UnmaskedProcMount
	if !out.Privileged && !unmasked {
		out.MaskedPaths = maskedPaths
		out.ReadonlyPaths = readonlyPaths
	}
	return out, nil
}

// checkAppArmor refuses AppArmor profiles other than Unconfined: the
// kernels skiff runs on here have no AppArmor, and a container asking for
// it cannot start (docs/compatibility.md).
func checkAppArmor(pod *corev1.Pod, c *corev1.Container) error {
	prof := (*corev1.AppArmorProfile)(nil)
	if pod.Spec.SecurityContext != nil {
		prof = pod.Spec.SecurityContext.AppArmorProfile
	}
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		prof = c.SecurityContext.AppArmorProfile
	}
	if prof != nil && prof.Type != corev1.AppArmorProfileTypeUnconfined {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
			return fmt.Errorf("AppArmor profile %q requested, but AppArmor is not enabled on node", prof.Type)
		}
	}
	return nil
}
