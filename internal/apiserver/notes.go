package apiserver

import (
	"context"
	"maps"
	"net/http"
	"sync"
)

// requestNotes are what the handling of one request leaves beside its
// answer: warnings for the client (Warning headers, which kubectl prints)
// and annotations for the request's audit record, as upstream's
// warning.AddWarning and audit.AddAuditAnnotation. Admission plugins add
// them through the request's context.
type requestNotes struct {
	w http.ResponseWriter

	mu          sync.Mutex
	warned      map[string]bool
	annotations map[string]string
}

type notesKey struct{}

// WithNotes lets the handlers below add warnings to w and audit
// annotations to the request. The server gives every request its own;
// tests of admission plugins make theirs.
func WithNotes(ctx context.Context, w http.ResponseWriter) context.Context {
	return context.WithValue(ctx, notesKey{}, &requestNotes{w: w})
}

// AddWarning sends msg to the client in a Warning header, once however
// often it is added: admission may run more than once for one update (the
// storage compare-and-swap loop). It must be called before the answer
// begins; outside a request it does nothing.
func AddWarning(ctx context.Context, msg string) {
	n, ok := ctx.Value(notesKey{}).(*requestNotes)
	if !ok || msg == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.warned[msg] {
		return
	}
	if n.warned == nil {
		n.warned = map[string]bool{}
	}
	n.warned[msg] = true
	addWarnings(n.w, []string{msg})
}

// AnnotateAudit records an annotation for the request's audit record
// ("pod-security.kubernetes.io/audit-violations": ...). The first value
// of a key stands, as upstream's. Outside a request it does nothing.
func AnnotateAudit(ctx context.Context, key, value string) {
	n, ok := ctx.Value(notesKey{}).(*requestNotes)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, set := n.annotations[key]; set {
		return
	}
	if n.annotations == nil {
		n.annotations = map[string]string{}
	}
	n.annotations[key] = value
}

// AuditAnnotations returns a copy of the audit annotations recorded so far
// for the request of ctx (nil when none): what an audit log writes in the
// event's annotations.
func AuditAnnotations(ctx context.Context) map[string]string {
	n, ok := ctx.Value(notesKey{}).(*requestNotes)
	if !ok {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.annotations)
}
