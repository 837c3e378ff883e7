package prober

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// userAgent is what HTTP and gRPC probes send, as a v1.32 kubelet does.
const userAgent = "kube-probe/1.32"

// maxOutput bounds the exec output and HTTP body a probe keeps (upstream: 10KiB).
const maxOutput = 10 << 10

// maxAttempts is how many times one probe is tried when its handler errors
// (as opposed to failing); upstream's maxProbeRetries.
const maxAttempts = 3

// outcome is the result of running a handler once.
type outcome int

const (
	outcomeUnknown outcome = iota
	outcomeSuccess
	// outcomeWarning is a success worth an event (an HTTP redirect that was
	// not followed).
	outcomeWarning
	outcomeFailure
)

// String returns upstream's lower-case name, used in event messages.
func (o outcome) String() string {
	switch o {
	case outcomeSuccess:
		return "success"
	case outcomeWarning:
		return "warning"
	case outcomeFailure:
		return "failure"
	default:
		return "unknown"
	}
}

// errNoPodIP is returned when a network probe has no host to talk to.
var errNoPodIP = errors.New("pod has no IP address")

// target is what a handler needs to know about the container it probes.
type target struct {
	container   *v1.Container
	containerID string
	podIP       string
}

// prober runs probe handlers. It is safe for concurrent use.
type prober struct {
	runtime   Runtime
	transport *http.Transport
}

func newProber(rt Runtime) *prober {
	return &prober{runtime: rt, transport: newHTTPTransport()}
}

// run runs the handler of spec once, retrying up to maxAttempts times while
// the handler errors. A returned error means the probe could not be run at
// all (bad port, runtime unreachable); its result must be discarded.
func (p *prober) run(ctx context.Context, spec *v1.Probe, t target, timeout time.Duration) (outcome, string, error) {
	var (
		res outcome
		out string
		err error
	)
	for range maxAttempts {
		res, out, err = p.runOnce(ctx, spec, t, timeout)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	return res, out, err
}

func (p *prober) runOnce(ctx context.Context, spec *v1.Probe, t target, timeout time.Duration) (outcome, string, error) {
	switch {
	case spec.Exec != nil:
		cmd := expandCommand(spec.Exec.Command, t.container.Env)
		return p.exec(ctx, t.containerID, cmd, timeout)
	case spec.HTTPGet != nil:
		return p.httpGet(ctx, spec.HTTPGet, t.container, t.podIP, timeout)
	case spec.TCPSocket != nil:
		port, err := resolvePort(spec.TCPSocket.Port, t.container)
		if err != nil {
			return outcomeUnknown, "", err
		}
		host := spec.TCPSocket.Host
		if host == "" {
			host = t.podIP
		}
		if host == "" {
			return outcomeUnknown, "", errNoPodIP
		}
		return p.tcp(ctx, host, port, timeout)
	case spec.GRPC != nil:
		if t.podIP == "" {
			return outcomeUnknown, "", errNoPodIP
		}
		service := ""
		if spec.GRPC.Service != nil {
			service = *spec.GRPC.Service
		}
		return p.grpc(ctx, t.podIP, service, int(spec.GRPC.Port), timeout)
	default:
		return outcomeUnknown, "", fmt.Errorf("missing probe handler for container %q", t.container.Name)
	}
}

// resolvePort turns a probe's port (a number, or the name of one of the
// container's ports) into a port number.
func resolvePort(port intstr.IntOrString, c *v1.Container) (int, error) {
	n := -1
	switch port.Type {
	case intstr.Int:
		n = port.IntValue()
	case intstr.String:
		found := false
		for _, p := range c.Ports {
			if p.Name == port.StrVal {
				n, found = int(p.ContainerPort), true
				break
			}
		}
		if !found {
			// A number written as a string is accepted, as upstream does.
			v, err := strconv.Atoi(port.StrVal)
			if err != nil {
				return -1, fmt.Errorf("port %s not found", port.StrVal)
			}
			n = v
		}
	default:
		return -1, fmt.Errorf("intOrString had no kind: %+v", port)
	}
	if n <= 0 || n >= 65536 {
		return n, fmt.Errorf("invalid port number: %v", n)
	}
	return n, nil
}

// expandCommand expands $(VAR) references in an exec probe's command with
// the container's literal env values (not valueFrom ones, which the kubelet
// only knows when it starts the container), as upstream does. $$ is an
// escaped $; a reference to an unknown variable is left as written.
func expandCommand(cmd []string, env []v1.EnvVar) []string {
	if len(cmd) == 0 {
		return cmd
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	out := make([]string, len(cmd))
	for i, arg := range cmd {
		out[i] = expand(arg, vars)
	}
	return out
}

func expand(s string, vars map[string]string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b = append(b, s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b = append(b, '$')
			i++
		case '(':
			end := -1
			for j := i + 2; j < len(s); j++ {
				if s[j] == ')' {
					end = j
					break
				}
			}
			if end < 0 {
				b = append(b, s[i:]...)
				return string(b)
			}
			name := s[i+2 : end]
			if v, ok := vars[name]; ok && name != "" {
				b = append(b, v...)
			} else {
				b = append(b, s[i:end+1]...)
			}
			i = end
		default:
			b = append(b, '$')
		}
	}
	return string(b)
}
