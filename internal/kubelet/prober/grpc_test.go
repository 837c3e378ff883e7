package prober

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
)

// serveGRPC starts a gRPC server on loopback and returns its port.
func serveGRPC(t *testing.T, register func(*grpc.Server)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port
}

// stuckHealth answers Check only when the caller gives up.
type stuckHealth struct {
	healthpb.UnimplementedHealthServer
}

func (stuckHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestGRPCProbe(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	healthy := serveGRPC(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) })
	bare := serveGRPC(t, func(*grpc.Server) {})
	stuck := serveGRPC(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, stuckHealth{}) })
	refused := closedPort(t)

	tests := []struct {
		name    string
		port    int
		service string
		timeout time.Duration
		want    outcome
		wantOut string
	}{
		{name: "whole server serving", port: healthy, want: outcomeSuccess, wantOut: "service healthy"},
		{name: "service serving", port: healthy, service: "api", want: outcomeSuccess, wantOut: "service healthy"},
		{name: "service not serving", port: healthy, service: "db", want: outcomeFailure, wantOut: `service unhealthy (responded with "NOT_SERVING")`},
		{
			name: "unknown service", port: healthy, service: "nope", want: outcomeFailure,
			wantOut: "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service",
		},
		{
			name: "no health service", port: bare, want: outcomeFailure,
			wantOut: "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health",
		},
		{
			name: "check times out", port: stuck, timeout: 100 * time.Millisecond, want: outcomeFailure,
			wantOut: "timeout: health rpc did not complete within 100ms",
		},
		{
			name: "refused", port: refused, timeout: 100 * time.Millisecond, want: outcomeFailure,
			wantOut: fmt.Sprintf(`timeout: failed to connect service "127.0.0.1:%d" within 100ms: context deadline exceeded`, refused),
		},
	}
	p := newProber(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			spec := &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: int32(tt.port), Service: &tt.service}}}
			got, out, err := p.runOnce(context.Background(), spec, target{container: &v1.Container{}, podIP: "127.0.0.1"}, timeout)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || out != tt.wantOut {
				t.Errorf("got (%v, %q), want (%v, %q)", got, out, tt.want, tt.wantOut)
			}
		})
	}
}
