package prober

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	cri "k8s.io/cri-client/pkg"
	utilexec "k8s.io/utils/exec"
)

// scriptedRuntime answers ExecSync with fixed values and records the call.
type scriptedRuntime struct {
	stdout, stderr []byte
	err            error
	gotID          string
	gotCmd         []string
	gotTimeout     time.Duration
}

func (r *scriptedRuntime) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	r.gotID, r.gotCmd, r.gotTimeout = id, cmd, timeout
	return r.stdout, r.stderr, r.err
}

func TestExecProbe(t *testing.T) {
	big := strings.Repeat("x", maxOutput+100)
	tests := []struct {
		name    string
		rt      scriptedRuntime
		want    outcome
		wantOut string
		wantErr bool
	}{
		{name: "exit 0", rt: scriptedRuntime{stdout: []byte("fine\n")}, want: outcomeSuccess, wantOut: "fine\n"},
		{
			name:    "exit 1 reports stdout then stderr",
			rt:      scriptedRuntime{stdout: []byte("out;"), stderr: []byte("err"), err: utilexec.CodeExitError{Err: errors.New("command 'x' exited with 1: err"), Code: 1}},
			want:    outcomeFailure,
			wantOut: "out;err",
		},
		{
			name:    "exit error with status 0 is success",
			rt:      scriptedRuntime{stdout: []byte("ok"), err: utilexec.CodeExitError{Err: errors.New("odd"), Code: 0}},
			want:    outcomeSuccess,
			wantOut: "ok",
		},
		{
			name:    "wrapped exit error",
			rt:      scriptedRuntime{err: fmt.Errorf("runtime: %w", utilexec.CodeExitError{Err: errors.New("x"), Code: 2})},
			want:    outcomeFailure,
			wantOut: "",
		},
		{
			name:    "timeout is a failure with the runtime's message",
			rt:      scriptedRuntime{err: fmt.Errorf("%w: %q timed out after %s", cri.ErrCommandTimedOut, "sleep 10", time.Second)},
			want:    outcomeFailure,
			wantOut: `command timed out: "sleep 10" timed out after 1s`,
		},
		{name: "deadline exceeded is a timeout", rt: scriptedRuntime{err: context.DeadlineExceeded}, want: outcomeFailure, wantOut: "context deadline exceeded"},
		{name: "runtime error is an error", rt: scriptedRuntime{err: errors.New("container not found")}, want: outcomeUnknown, wantErr: true},
		{name: "output is cut at 10KiB", rt: scriptedRuntime{stdout: []byte(big), err: utilexec.CodeExitError{Code: 1, Err: errors.New("x")}}, want: outcomeFailure, wantOut: big[:maxOutput]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.rt
			p := newProber(&rt)
			got, out, err := p.exec(context.Background(), "c1", []string{"check"}, 3*time.Second)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want || out != tt.wantOut {
				t.Errorf("got (%v, %q), want (%v, %q)", got, out, tt.want, tt.wantOut)
			}
			if rt.gotID != "c1" || rt.gotTimeout != 3*time.Second {
				t.Errorf("ExecSync(%q, timeout %v), want (c1, 3s)", rt.gotID, rt.gotTimeout)
			}
		})
	}
}

func TestExecProbeExpandsStaticEnv(t *testing.T) {
	rt := &scriptedRuntime{}
	p := newProber(rt)
	c := &v1.Container{Name: "app", Env: []v1.EnvVar{{Name: "PORT", Value: "8080"}, {Name: "FILE", Value: "/tmp/ok"}}}
	spec := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "test -f $(FILE) && nc -z localhost $(PORT) $$(HOME) $(NOPE)"}}}}
	if _, _, err := p.run(context.Background(), spec, target{container: c, containerID: "c1"}, time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{"sh", "-c", "test -f /tmp/ok && nc -z localhost 8080 $(HOME) $(NOPE)"}
	if diff := cmp.Diff(want, rt.gotCmd); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": ""}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1yz"},
		{"$$(A)", "$(A)"},
		{"$$", "$"},
		{"$(C)", "$(C)"},
		{"$(A", "$(A"},
		{"$", "$"},
		{"a$b", "a$b"},
		{"$()", "$()"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, vars); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRunRetriesErrors(t *testing.T) {
	rt := &countingRuntime{err: errors.New("runtime down")}
	p := newProber(rt)
	spec := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"x"}}}}
	res, _, err := p.run(context.Background(), spec, target{container: &v1.Container{}, containerID: "c"}, time.Second)
	if err == nil || res != outcomeUnknown {
		t.Fatalf("run = (%v, %v), want (unknown, error)", res, err)
	}
	if rt.calls != maxAttempts {
		t.Errorf("ExecSync called %d times, want %d", rt.calls, maxAttempts)
	}

	// A failure is an answer: no retry.
	rt = &countingRuntime{err: utilexec.CodeExitError{Code: 1, Err: errors.New("x")}}
	p = newProber(rt)
	if res, _, _ := p.run(context.Background(), spec, target{container: &v1.Container{}, containerID: "c"}, time.Second); res != outcomeFailure || rt.calls != 1 {
		t.Errorf("failing probe: result %v after %d calls, want failure after 1", res, rt.calls)
	}
}

type countingRuntime struct {
	err   error
	calls int
}

func (r *countingRuntime) ExecSync(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
	r.calls++
	return nil, nil, r.err
}
