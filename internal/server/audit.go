package server

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/audit"
)

// loadAuditPolicy reads --audit-policy-file, before anything is started:
// a policy that does not load stops the start. It returns nil when
// nothing is to be audited: without a policy, as upstream, and without
// --audit-log-path, the only backend skiff has.
func loadAuditPolicy(cfg Config, lg *slog.Logger) (*audit.Policy, error) {
	if cfg.AuditPolicyFile == "" {
		if cfg.AuditLogPath != "" {
			lg.Info("no --audit-policy-file: nothing is audited", "audit-log-path", cfg.AuditLogPath)
		}
		return nil, nil
	}
	policy, warnings, err := audit.LoadPolicy(cfg.AuditPolicyFile)
	if err != nil {
		return nil, fmt.Errorf("--audit-policy-file: %w", err)
	}
	for _, w := range warnings {
		lg.Warn("audit policy decoded leniently", "file", cfg.AuditPolicyFile, "err", w)
	}
	if cfg.AuditLogPath == "" {
		lg.Warn("--audit-policy-file without --audit-log-path: nothing is audited", "audit-policy-file", cfg.AuditPolicyFile)
		return nil, nil
	}
	return policy, nil
}

// openAuditLog opens --audit-log-path when policy audits requests (nil
// otherwise). The caller closes it once the API server has drained.
func openAuditLog(cfg Config, policy *audit.Policy, reg prometheus.Registerer, lg *slog.Logger) (*audit.LogBackend, error) {
	if policy == nil {
		return nil, nil
	}
	backend, err := audit.NewLogBackend(audit.LogOptions{
		Path:       cfg.AuditLogPath,
		MaxAge:     cfg.AuditLogMaxAge,
		MaxBackups: cfg.AuditLogMaxBackup,
		MaxSize:    cfg.AuditLogMaxSize,
		Compress:   cfg.AuditLogCompress,
		Registerer: reg,
		Logger:     lg,
	})
	if err != nil {
		return nil, fmt.Errorf("--audit-log-path: %w", err)
	}
	lg.Info("auditing", "policy", cfg.AuditPolicyFile, "rules", len(policy.Rules), "log", cfg.AuditLogPath)
	return backend, nil
}

// auditSink is the log as the API server's sink: nil, not a nil pointer,
// when there is none.
func auditSink(b *audit.LogBackend) apiserver.AuditSink {
	if b == nil {
		return nil
	}
	return b
}
