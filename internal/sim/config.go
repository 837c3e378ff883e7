package sim

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Config says which nodes to simulate and how their pods behave. Start
// from Defaults(): in a zero Config, RunPods is false and RunTime 0 means
// pods complete as soon as they run.
type Config struct {
	// Nodes is how many nodes to register, named NamePrefix+index
	// (sim-node-0 .. sim-node-{Nodes-1}).
	Nodes      int
	NamePrefix string

	// CPU, Memory, Pods and EphemeralStorage are each node's capacity
	// (and allocatable), as resource quantities.
	CPU, Memory, Pods, EphemeralStorage string

	// Labels are added to every node, besides kubernetes.io/hostname,
	// kubernetes.io/os=linux, kubernetes.io/arch=amd64 and, when
	// ZoneCount > 0, topology.kubernetes.io/zone=zone-{index%ZoneCount}.
	Labels    map[string]string
	ZoneCount int
	// Taints are set on every node at registration.
	Taints []corev1.Taint

	// StartDelay is how long after the simulator first sees a bound pod
	// it reports the pod Running.
	StartDelay time.Duration
	// RunTime is how long a pod with restartPolicy Never or OnFailure
	// runs before it completes (and the crash interval of "fail" pods).
	RunTime time.Duration
	// HeartbeatInterval is how often each node renews its Lease.
	HeartbeatInterval time.Duration

	// KillNodes are registered but never heartbeat, never repair their
	// Ready condition and never touch their pods: dead from the start.
	KillNodes []string
	// RunPods makes the simulator run the pods bound to its nodes. When
	// false, bound pods stay Pending (for scheduler benchmarks); their
	// deletion is still honoured.
	RunPods bool

	// Workers is the size of each worker pool (nodes, leases, pods).
	Workers int

	// KubeletPort is the port of the kubelet endpoint every node
	// publishes (status.daemonEndpoints.kubeletEndpoint.port) and the
	// simulator serves /metrics/resource and /healthz on, for all its
	// nodes at once (see kubelet.go): 0 picks a free port; a port that is
	// taken (another simulator, a real kubelet) is replaced by a free one
	// with a warning, since nodes publish the port actually listened on.
	// Negative serves nothing: nodes publish DefaultKubeletPort and
	// nothing answers there.
	KubeletPort int
	// ClientCAFile holds the CA certificates (PEM) that the kubelet
	// endpoint verifies client certificates against. Empty: the CA the
	// simulator's client trusts for the API server (its rest.Config's
	// CAData or CAFile), which is the cluster CA.
	ClientCAFile string
	// UsageFraction is the share of each container's cpu and memory
	// requests it is reported to use, unless the pod's annotations
	// (AnnotationCPUUsage, AnnotationMemoryUsage) say otherwise.
	UsageFraction float64
}

// Default values.
const (
	DefaultNamePrefix        = "sim-node-"
	DefaultCPU               = "32"
	DefaultMemory            = "256Gi"
	DefaultPods              = "110"
	DefaultEphemeralStorage  = "1Ti"
	DefaultRunTime           = 2 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultWorkers           = 32
	DefaultKubeletPort       = 10250
	DefaultUsageFraction     = 0.5
)

// Defaults returns the default configuration (one node).
func Defaults() Config {
	return Config{
		Nodes:             1,
		NamePrefix:        DefaultNamePrefix,
		CPU:               DefaultCPU,
		Memory:            DefaultMemory,
		Pods:              DefaultPods,
		EphemeralStorage:  DefaultEphemeralStorage,
		RunTime:           DefaultRunTime,
		HeartbeatInterval: DefaultHeartbeatInterval,
		RunPods:           true,
		Workers:           DefaultWorkers,
		KubeletPort:       DefaultKubeletPort,
		UsageFraction:     DefaultUsageFraction,
	}
}

// withDefaults fills the fields whose zero value is never meant
// (empty names and quantities, a zero interval or worker count).
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.NamePrefix == "" {
		c.NamePrefix = d.NamePrefix
	}
	if c.CPU == "" {
		c.CPU = d.CPU
	}
	if c.Memory == "" {
		c.Memory = d.Memory
	}
	if c.Pods == "" {
		c.Pods = d.Pods
	}
	if c.EphemeralStorage == "" {
		c.EphemeralStorage = d.EphemeralStorage
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.RunTime < 0 {
		c.RunTime = 0
	}
	if c.StartDelay < 0 {
		c.StartDelay = 0
	}
	if c.UsageFraction < 0 {
		c.UsageFraction = 0
	}
	return c
}

// capacity parses the node capacity quantities.
func (c Config) capacity() (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	for name, s := range map[corev1.ResourceName]string{
		corev1.ResourceCPU:              c.CPU,
		corev1.ResourceMemory:           c.Memory,
		corev1.ResourcePods:             c.Pods,
		corev1.ResourceEphemeralStorage: c.EphemeralStorage,
	} {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return nil, fmt.Errorf("node %s %q: %w", name, s, err)
		}
		if q.Sign() < 0 {
			return nil, fmt.Errorf("node %s %q: must not be negative", name, s)
		}
		out[name] = q
	}
	return out, nil
}

// validate checks what the server would otherwise reject for every node.
func (c Config) validate() error {
	if c.Nodes < 0 {
		return fmt.Errorf("nodes %d: must not be negative", c.Nodes)
	}
	if c.Nodes > 0 {
		last := fmt.Sprintf("%s%d", c.NamePrefix, c.Nodes-1)
		if errs := validation.IsDNS1123Subdomain(last); len(errs) > 0 {
			return fmt.Errorf("node name %q: %s", last, strings.Join(errs, "; "))
		}
	}
	for k, v := range c.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("label %q value %q: %s", k, v, strings.Join(errs, "; "))
		}
	}
	for _, t := range c.Taints {
		if err := validateTaint(t); err != nil {
			return err
		}
	}
	if c.KubeletPort > 65535 {
		return fmt.Errorf("kubelet port %d: must be at most 65535", c.KubeletPort)
	}
	_, err := c.capacity()
	return err
}

// ParseTaint parses a taint flag value, "key=value:Effect" or
// "key:Effect", as kubectl taint does. Effect is NoSchedule,
// PreferNoSchedule or NoExecute.
func ParseTaint(s string) (corev1.Taint, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return corev1.Taint{}, fmt.Errorf("taint %q: want key[=value]:Effect", s)
	}
	kv, effect := s[:i], corev1.TaintEffect(s[i+1:])
	key, value, _ := strings.Cut(kv, "=")
	t := corev1.Taint{Key: key, Value: value, Effect: effect}
	if err := validateTaint(t); err != nil {
		return corev1.Taint{}, fmt.Errorf("taint %q: %w", s, err)
	}
	return t, nil
}

func validateTaint(t corev1.Taint) error {
	if errs := validation.IsQualifiedName(t.Key); len(errs) > 0 {
		return fmt.Errorf("taint key %q: %s", t.Key, strings.Join(errs, "; "))
	}
	if t.Value != "" {
		if errs := validation.IsValidLabelValue(t.Value); len(errs) > 0 {
			return fmt.Errorf("taint value %q: %s", t.Value, strings.Join(errs, "; "))
		}
	}
	switch t.Effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return nil
	default:
		return fmt.Errorf("taint effect %q: want NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
	}
}
