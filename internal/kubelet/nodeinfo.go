package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxPods is upstream's default pod capacity per node.
const maxPods = 110

// buildNode is the Node as this kubelet reports it at now.
func (k *Kubelet) buildNode(ctx context.Context, now time.Time) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   k.cfg.NodeName,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	for key, v := range k.cfg.Labels {
		labels[key] = v
	}
	capacity := k.capacity()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: labels, Annotations: maps.Clone(k.cfg.Annotations)},
		Status: corev1.NodeStatus{
			Capacity:        capacity,
			Allocatable:     capacity.DeepCopy(),
			Phase:           corev1.NodeRunning,
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: k.cfg.KubeletPort}},
			NodeInfo:        k.nodeInfo(),
		},
	}
	if k.cfg.NodeIP != "" {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: k.cfg.NodeIP})
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: k.cfg.NodeName})
	ready, msg := k.runtimeConditions(ctx)
	t := metav1.NewTime(now.Truncate(time.Second))
	cond := func(typ corev1.NodeConditionType, ok bool, reason, message string) corev1.NodeCondition {
		st := corev1.ConditionFalse
		if ok {
			st = corev1.ConditionTrue
		}
		return corev1.NodeCondition{Type: typ, Status: st, Reason: reason, Message: message, LastHeartbeatTime: t, LastTransitionTime: t}
	}
	readyCond := cond(corev1.NodeReady, true, "KubeletReady", "kubelet is posting ready status")
	if !ready {
		readyCond = cond(corev1.NodeReady, false, "KubeletNotReady", msg)
	}
	n.Status.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		readyCond,
	}
	return n
}

// capacity is the machine's cpu, memory, ephemeral storage and pod count.
func (k *Kubelet) capacity() corev1.ResourceList {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
	}
	var fs unix.Statfs_t
	if unix.Statfs(k.cfg.RootDir, &fs) == nil {
		rl[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(fs.Blocks)*int64(fs.Bsize), resource.BinarySI)
	}
	return rl
}

// allocatable is what pods may use; skiff reserves nothing for the system
// yet, so it equals capacity (docs/compatibility.md).
func (k *Kubelet) allocatable() corev1.ResourceList { return k.capacity() }

// memTotal is MemTotal from /proc/meminfo, in bytes.
func memTotal() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func (k *Kubelet) nodeInfo() corev1.NodeSystemInfo {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	return corev1.NodeSystemInfo{
		MachineID:               readTrim("/etc/machine-id"),
		SystemUUID:              readTrim("/sys/class/dmi/id/product_uuid"),
		BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           unix.ByteSliceToString(uts.Release[:]),
		OSImage:                 osImage(),
		ContainerRuntimeVersion: k.runtimeVersion,
		KubeletVersion:          k.cfg.Version,
		KubeProxyVersion:        "",
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// osImage is PRETTY_NAME from /etc/os-release.
func osImage() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}
