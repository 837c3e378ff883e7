package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The audit flags: no policy, no auditing; a policy without a log, no
// auditing; a bad policy, an error naming the flag; the log options
// reach the backend.
func TestAuditFlags(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Some\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.DiscardHandler)
	logPath := filepath.Join(dir, "audit.log")

	for _, cfg := range []Config{{AuditLogPath: logPath}, {AuditPolicyFile: good}} {
		if p, err := loadAuditPolicy(cfg, lg); p != nil || err != nil {
			t.Errorf("%+v: policy %v, %v; want none", cfg, p, err)
		}
	}
	if _, err := loadAuditPolicy(Config{AuditPolicyFile: bad, AuditLogPath: logPath}, lg); err == nil ||
		!strings.Contains(err.Error(), "--audit-policy-file") || !strings.Contains(err.Error(), `unknown level "Some"`) {
		t.Errorf("bad policy: %v", err)
	}

	cfg := Config{AuditPolicyFile: good, AuditLogPath: logPath, AuditLogMaxAge: 3, AuditLogMaxBackup: 4, AuditLogMaxSize: 5, AuditLogCompress: true}
	p, err := loadAuditPolicy(cfg, lg)
	if err != nil || p == nil {
		t.Fatalf("policy %v, %v", p, err)
	}
	b, err := openAuditLog(cfg, p, prometheus.NewRegistry(), lg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if o := b.Options(); o.Path != logPath || o.MaxAge != 3 || o.MaxBackups != 4 || o.MaxSize != 5 || !o.Compress {
		t.Errorf("options %+v", o)
	}
	if auditSink(nil) != nil {
		t.Error("a nil backend is a non-nil sink")
	}
	if _, err := openAuditLog(Config{AuditLogPath: filepath.Join(logPath, "x", "y")}, p, nil, lg); err == nil || !strings.Contains(err.Error(), "--audit-log-path") {
		t.Errorf("unwritable path: %v", err)
	}
}
