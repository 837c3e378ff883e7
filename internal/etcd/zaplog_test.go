package etcd

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	tests := []struct {
		name  string
		quiet bool
		log   func(lg *zap.Logger)
		want  []string // lines, with the time attribute removed
	}{
		{
			name: "info dropped, warn and error kept with fields",
			log: func(lg *zap.Logger) {
				lg.Info("chatty")
				lg.Warn("slow", zap.String("b", "x"), zap.Int("a", 1))
				lg.Named("raft").Error("broken", zap.Error(errors.New("boom")))
			},
			want: []string{
				`level=WARN msg=slow c=etcd a=1 b=x`,
				`level=ERROR msg=broken c=etcd logger=raft error=boom`,
			},
		},
		{
			name: "With fields carried",
			log: func(lg *zap.Logger) {
				lg.With(zap.String("member", "m1")).Warn("w")
			},
			want: []string{`level=WARN msg=w c=etcd member=m1`},
		},
		{
			name: "known noise demoted",
			log: func(lg *zap.Logger) {
				lg.Warn("simple token is not cryptographically signed")
				lg.Error("failed to update storage version")
			},
			want: []string{
				`level=DEBUG msg="simple token is not cryptographically signed" c=etcd`,
				`level=DEBUG msg="failed to update storage version" c=etcd`,
			},
		},
		{
			name: "publish retry demoted only for too many requests",
			log: func(lg *zap.Logger) {
				lg.Warn("failed to publish local member to cluster through raft", zap.Error(errors.New("etcdserver: too many requests")))
				lg.Warn("failed to publish local member to cluster through raft", zap.Error(errors.New("etcdserver: request timed out")))
			},
			want: []string{
				`level=DEBUG msg="failed to publish local member to cluster through raft" c=etcd error="etcdserver: too many requests"`,
				`level=WARN msg="failed to publish local member to cluster through raft" c=etcd error="etcdserver: request timed out"`,
			},
		},
		{
			name:  "quiet demotes everything",
			quiet: true,
			log:   func(lg *zap.Logger) { lg.Error("setting up serving from embedded etcd failed.") },
			want:  []string{`level=DEBUG msg="setting up serving from embedded etcd failed." c=etcd`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: slog.LevelDebug,
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})
			quiet := new(atomic.Bool)
			quiet.Store(tc.quiet)
			tc.log(newZapLogger(slog.New(h).With("c", "etcd"), zap.WarnLevel, quiet))
			got := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZapToSlogRespectsHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})
	lg := newZapLogger(slog.New(h), zap.WarnLevel, nil)
	lg.Warn("hidden")
	if buf.Len() != 0 {
		t.Errorf("warn written through an error-level handler: %q", buf.String())
	}
	lg.Error("shown")
	if !strings.Contains(buf.String(), "msg=shown") {
		t.Errorf("error not written: %q", buf.String())
	}
}
