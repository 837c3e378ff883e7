package apiserver

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-io/skiff/internal/audit"
)

// BenchmarkServeAudited is a whole request (a SelfSubjectReview create,
// which needs no storage) through ServeHTTP, not audited, audited at
// Metadata and at RequestResponse into a log file: the difference is what
// auditing costs a request.
func BenchmarkServeAudited(b *testing.B) {
	for _, level := range []string{"off", "Metadata", "RequestResponse"} {
		b.Run(level, func(b *testing.B) {
			cfg := Config{Authenticator: bearerTokens{}}
			if level != "off" {
				p, _, err := audit.ParsePolicy([]byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: " + level + "\n"))
				if err != nil {
					b.Fatal(err)
				}
				lb, err := audit.NewLogBackend(audit.LogOptions{Path: filepath.Join(b.TempDir(), "audit.log")})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = lb.Close() })
				cfg.AuditPolicy, cfg.AuditSink = p, lb
			}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			const body = `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", ssrPath, strings.NewReader(body))
				r.Header.Set("Authorization", "Bearer alice")
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				if w.Code != http.StatusCreated {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
