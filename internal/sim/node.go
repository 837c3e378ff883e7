package sim

import (
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and identity every simulated node carries.
const (
	// SimLabel marks the nodes the simulator registered; its node
	// informer watches only those.
	SimLabel = "skiff.io/sim"

	KubeletVersion = "v1.37.2-skiff-sim"
)

// nodeTemplate is what every node of one simulator shares, parsed once.
type nodeTemplate struct {
	capacity  corev1.ResourceList
	labels    map[string]string
	zoneCount int
	taints    []corev1.Taint
	// kubeletPort is the port of the simulator's kubelet endpoint.
	kubeletPort int32
}

// buildNode is the Node the simulator registers as node index, named
// name: labels, taints and a status that is already Ready, as a kubelet
// registers (the server keeps status on create).
func buildNode(t nodeTemplate, name string, index int, now metav1.Time) *corev1.Node {
	labels := map[string]string{}
	for k, v := range t.labels {
		labels[k] = v
	}
	labels[corev1.LabelHostname] = name
	labels[corev1.LabelOSStable] = "linux"
	labels[corev1.LabelArchStable] = "amd64"
	labels[SimLabel] = "true"
	if t.zoneCount > 0 {
		labels[corev1.LabelTopologyZone] = fmt.Sprintf("zone-%d", index%t.zoneCount)
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: append([]corev1.Taint(nil), t.taints...)},
		Status:     nodeStatus(t, name, index, now),
	}
	return n
}

func nodeStatus(t nodeTemplate, name string, index int, now metav1.Time) corev1.NodeStatus {
	id := nodeID(name)
	conds, _ := healthyConditions(nil, now)
	return corev1.NodeStatus{
		Capacity:    t.capacity.DeepCopy(),
		Allocatable: t.capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions:  conds,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: nodeIP(index)},
			{Type: corev1.NodeHostName, Address: name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: t.kubeletPort}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               id,
			SystemUUID:              id,
			BootID:                  id,
			KernelVersion:           "sim",
			OSImage:                 "skiff sim",
			ContainerRuntimeVersion: "sim://" + KubeletVersion,
			KubeletVersion:          KubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
}

// nodeID is a stable 32-hex-digit id for machine and boot ids.
func nodeID(name string) string {
	h := fnv.New128a()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("%x", h.Sum(nil))
}

// healthy is the state of each condition a live node reports.
var healthy = []struct {
	typ     corev1.NodeConditionType
	status  corev1.ConditionStatus
	reason  string
	message string
}{
	{corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
	{corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
	{corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
	{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"},
}

// healthyConditions returns conds with the kubelet's own conditions set to
// a live node's state (Ready True, pressures False) and whether anything
// changed. A condition already in that state is kept as it is; other
// condition types are kept untouched.
func healthyConditions(conds []corev1.NodeCondition, now metav1.Time) ([]corev1.NodeCondition, bool) {
	out := make([]corev1.NodeCondition, 0, len(conds)+len(healthy))
	changed := false
	for _, h := range healthy {
		i := findNodeCondition(conds, h.typ)
		if i >= 0 && conds[i].Status == h.status && conds[i].Reason == h.reason {
			out = append(out, conds[i])
			continue
		}
		changed = true
		out = append(out, corev1.NodeCondition{
			Type: h.typ, Status: h.status, Reason: h.reason, Message: h.message,
			LastHeartbeatTime: now, LastTransitionTime: now,
		})
	}
	for _, c := range conds {
		if !isHealthyType(c.Type) {
			out = append(out, c)
		}
	}
	return out, changed
}

func isHealthyType(t corev1.NodeConditionType) bool {
	for _, h := range healthy {
		if h.typ == t {
			return true
		}
	}
	return false
}

func findNodeCondition(conds []corev1.NodeCondition, t corev1.NodeConditionType) int {
	for i := range conds {
		if conds[i].Type == t {
			return i
		}
	}
	return -1
}

// nodeReady reports whether n's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	if n == nil {
		return false
	}
	i := findNodeCondition(n.Status.Conditions, corev1.NodeReady)
	return i >= 0 && n.Status.Conditions[i].Status == corev1.ConditionTrue
}

// mergeNodeMeta applies the simulator's labels and taints to an existing
// node (a restart of the simulator) and reports whether anything changed.
// Labels and taints that others set are kept; a taint is matched by key
// and effect.
func mergeNodeMeta(cur, want *corev1.Node) (*corev1.Node, bool) {
	out := cur.DeepCopy()
	changed := false
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		if old, ok := out.Labels[k]; !ok || old != v {
			out.Labels[k] = v
			changed = true
		}
	}
	for _, t := range want.Spec.Taints {
		found := false
		for i := range out.Spec.Taints {
			o := &out.Spec.Taints[i]
			if o.Key == t.Key && o.Effect == t.Effect {
				found = true
				if o.Value != t.Value {
					o.Value = t.Value
					changed = true
				}
				break
			}
		}
		if !found {
			out.Spec.Taints = append(out.Spec.Taints, t)
			changed = true
		}
	}
	return out, changed
}
