package prober

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-client/pkg"
)

// Runtime runs commands in containers. Its signature is that of
// k8s.io/cri-api's RuntimeService.ExecSync, so the kubelet's CRI client
// satisfies it.
type Runtime interface {
	// ExecSync runs cmd in the container and waits for it, at most timeout
	// (0: no limit). A command that ran and exited non-zero is reported as an
	// error with an ExitStatus() int method (k8s.io/utils/exec.ExitError);
	// a command that timed out as an error wrapping
	// k8s.io/cri-client/pkg.ErrCommandTimedOut or context.DeadlineExceeded.
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout []byte, stderr []byte, err error)
}

// exitStatuser is k8s.io/utils/exec.ExitError's distinguishing method.
type exitStatuser interface{ ExitStatus() int }

// exec runs an exec probe: exit 0 is success, any other exit code a failure
// whose message is the command's output (stdout then stderr, at most 10KiB),
// a timeout a failure whose message is the runtime's error.
func (p *prober) exec(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (outcome, string, error) {
	if p.runtime == nil {
		return outcomeUnknown, "", errors.New("no container runtime to run exec probes")
	}
	// The runtime enforces timeout itself (in whole seconds); the context
	// only bounds a runtime that does not answer.
	ctx, cancel := context.WithTimeout(ctx, 2*timeout+time.Second)
	defer cancel()
	stdout, stderr, err := p.runtime.ExecSync(ctx, containerID, cmd, timeout)
	out := append(append([]byte(nil), stdout...), stderr...)
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	if err == nil {
		return outcomeSuccess, string(out), nil
	}
	var exit exitStatuser
	if errors.As(err, &exit) {
		if exit.ExitStatus() == 0 {
			return outcomeSuccess, string(out), nil
		}
		return outcomeFailure, string(out), nil
	}
	if isTimeout(err) {
		return outcomeFailure, err.Error(), nil
	}
	return outcomeUnknown, "", err
}

func isTimeout(err error) bool {
	return errors.Is(err, cri.ErrCommandTimedOut) ||
		errors.Is(err, context.DeadlineExceeded) ||
		status.Code(err) == codes.DeadlineExceeded
}
