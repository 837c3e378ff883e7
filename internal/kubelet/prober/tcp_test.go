package prober

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port
	refused := closedPort(t)
	container := &v1.Container{Ports: []v1.ContainerPort{{Name: "db", ContainerPort: int32(open)}}}

	tests := []struct {
		name    string
		action  v1.TCPSocketAction
		podIP   string
		want    outcome
		wantOut string
		wantErr string
	}{
		{name: "open port", action: v1.TCPSocketAction{Port: intstr.FromInt(open)}, podIP: "127.0.0.1", want: outcomeSuccess},
		{name: "named port", action: v1.TCPSocketAction{Port: intstr.FromString("db")}, podIP: "127.0.0.1", want: outcomeSuccess},
		{name: "host overrides pod IP", action: v1.TCPSocketAction{Host: "127.0.0.1", Port: intstr.FromInt(open)}, want: outcomeSuccess},
		{
			name: "refused", action: v1.TCPSocketAction{Port: intstr.FromInt(refused)}, podIP: "127.0.0.1",
			want: outcomeFailure, wantOut: fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", refused),
		},
		{name: "unknown named port", action: v1.TCPSocketAction{Port: intstr.FromString("web")}, podIP: "127.0.0.1", want: outcomeUnknown, wantErr: "port web not found"},
		{name: "no pod IP", action: v1.TCPSocketAction{Port: intstr.FromInt(open)}, want: outcomeUnknown, wantErr: errNoPodIP.Error()},
	}
	p := newProber(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &tt.action}}
			got, out, err := p.runOnce(context.Background(), spec, target{container: container, podIP: tt.podIP}, time.Second)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != tt.want || out != tt.wantOut || gotErr != tt.wantErr {
				t.Errorf("got (%v, %q, %q), want (%v, %q, %q)", got, out, gotErr, tt.want, tt.wantOut, tt.wantErr)
			}
		})
	}
}
