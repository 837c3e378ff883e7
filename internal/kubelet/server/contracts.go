package server

import (
	"context"
	"errors"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Errors a Pods implementation wraps so the server can pick the HTTP code.
// Wrap the sentinel last, after the message the client should read:
//
//	fmt.Errorf("previous terminated container %q in pod %q not found: %w", c, p, ErrNotAvailable)
//
// The server shows the text before ": <sentinel>" (the upstream wording) and
// answers 404 for ErrNotFound and 400 for ErrNotAvailable.
var (
	// ErrNotFound means the pod is not on this node.
	ErrNotFound = errors.New("not found")
	// ErrNotAvailable means the pod is here but the container (or the
	// requested instance of it) is not: unknown name, not started yet, or no
	// previous instance.
	ErrNotAvailable = errors.New("not available")
)

// Pods is what the kubelet core tells the server about pods on this node.
// Implementations must be safe for concurrent use.
type Pods interface {
	// Pods returns the pods bound to this node, status included. The server
	// does not modify them.
	Pods() []*v1.Pod
	// Container returns the CRI container ID and log path of a pod's
	// container: the current instance, or with previous the last terminated
	// one. Errors wrap ErrNotFound (pod unknown) or ErrNotAvailable.
	Container(namespace, pod, container string, previous bool) (id, logPath string, err error)
	// SandboxID returns the CRI sandbox ID of a pod; errors wrap ErrNotFound
	// or ErrNotAvailable (no sandbox yet).
	SandboxID(namespace, pod string) (string, error)
}

// Runtime is the part of CRI the server uses: a subset of
// k8s.io/cri-api/pkg/apis.RuntimeService with the same signatures, so the
// kubelet's CRI client satisfies it as is.
type Runtime interface {
	// Exec, Attach and PortForward return a one-time URL of the runtime's
	// streaming server that the server proxies the client's upgrade to.
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
	// ContainerStatus tells a log follower whether the container still runs.
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	// ListContainerStats and ListPodSandboxStats feed /stats/summary,
	// /metrics/resource and /metrics/cadvisor, each called once per
	// request. A runtime without sandbox stats may return a gRPC
	// Unimplemented error: pod totals are then summed from the containers
	// and /metrics/cadvisor has no pod-level series.
	ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error)
	ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error)
	// PodSandboxStatus is asked, verbose, once per sandbox the server has
	// not seen before: /metrics/cadvisor wants the sandbox's creation time
	// and, from containerd's verbose info ("pid", "image"), the pause
	// process whose /proc/<pid>/net/dev has the pod's network counters and
	// the pause image. A runtime without that info loses only those.
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
}
