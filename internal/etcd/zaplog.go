package etcd

import (
	"context"
	"log/slog"
	"sort"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger, as etcd's server and client want one,
// that writes its entries at min level and above to lg. etcd logs a lot at
// info level on every start; warn keeps what an operator needs. While
// quiet is set (during Close) every entry goes to lg at debug level: etcd
// reports its own orderly shutdown as errors ("use of closed network
// connection").
func newZapLogger(lg *slog.Logger, min zapcore.Level, quiet *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{handler: lg.Handler(), min: min, quiet: quiet})
}

// demoted are etcd warnings that every skiff start would print and that
// ask nothing of the operator; they go out at debug level.
var demoted = map[string]bool{
	// skiff serves no HTTP on the client port worth splitting off.
	"Running http and grpc server on single port. This is not recommended for production.": true,
	// etcd auth is off; the member is reachable only with a client
	// certificate.
	"simple token is not cryptographically signed": true,
	// A known race on a fresh data directory (etcd issues #18978,
	// #20495): the storage version monitor runs before the first apply
	// wrote term and confstate, fails, and succeeds on a later round.
	"Failed to detect schema version":  true,
	"failed to update storage version": true,
	// The WAL purge (maxWALFiles is 1) found its oldest file still in
	// use, as it is between a WAL cut and the next snapshot: it keeps
	// the file and tries again in 30 s.
	"failed to lock file": true,
}

// demotedWithError are etcd warnings that go out at debug level when their
// error field is the one given.
var demotedWithError = map[string]string{
	// The member's first proposal on start, which announces it and which
	// ReadyNotify waits for, is refused while the applied index lags the
	// committed one by more than 5,000, as it does until the member has
	// applied the first entries it replays from its WAL (its applied index
	// reads 0 until then). etcd retries at once, in a loop, with a warning
	// a try: hundreds a restart. The refusal ends by itself; a publish
	// that cannot succeed fails Start on its context instead.
	"failed to publish local member to cluster through raft": "etcdserver: too many requests",
	// The in-process client ends a finished snapshot stream (Save) by
	// cancelling it rather than reading it to EOF.
	"failed to receive from snapshot stream; closing": "context canceled",
}

// slogCore is a zapcore.Core that forwards entries to a slog.Handler.
type slogCore struct {
	handler slog.Handler
	min     zapcore.Level
	quiet   *atomic.Bool
	attrs   []slog.Attr // from With
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.min }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{
		handler: c.handler,
		min:     c.min,
		quiet:   c.quiet,
		attrs:   append(append([]slog.Attr(nil), c.attrs...), fieldAttrs(fields)...),
	}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) && c.handler.Enabled(context.Background(), c.level(e)) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := c.level(e)
	if want, ok := demotedWithError[e.Message]; ok && errorField(fields) == want {
		level = slog.LevelDebug
		if !c.handler.Enabled(context.Background(), level) {
			return nil
		}
	}
	r := slog.NewRecord(e.Time, level, e.Message, 0)
	r.AddAttrs(c.attrs...)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(fieldAttrs(fields)...)
	return c.handler.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// level is the slog level entry e is written at.
func (c *slogCore) level(e zapcore.Entry) slog.Level {
	if (c.quiet != nil && c.quiet.Load()) || demoted[e.Message] {
		return slog.LevelDebug
	}
	switch {
	case e.Level < zapcore.InfoLevel:
		return slog.LevelDebug
	case e.Level == zapcore.InfoLevel:
		return slog.LevelInfo
	case e.Level == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// errorField is the text of the error field among fields, or "".
func errorField(fields []zapcore.Field) string {
	for _, f := range fields {
		if f.Type == zapcore.ErrorType {
			if err, ok := f.Interface.(error); ok && err != nil {
				return err.Error()
			}
		}
	}
	return ""
}

// fieldAttrs turns zap fields into slog attributes, sorted by key.
func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}
