package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	authnv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/audit"
)

// AuditSink receives the audit events of requests, one per stage.
// ProcessEvent must not keep ev (the server changes it for the next
// stage) and must not block for long: it is called on the request's
// goroutine.
type AuditSink interface {
	ProcessEvent(ev *audit.Event)
}

// auditing reports whether requests are audited.
func (s *Server) auditing() bool { return s.cfg.AuditPolicy != nil && s.cfg.AuditSink != nil }

// auditStart is what ServeHTTP knows of a request before anything else
// is done: its audit ID and when it came.
type auditStart struct {
	id       types.UID
	received time.Time
}

type auditStartKey struct{}

// auditInit gives the request its audit ID, the client's Audit-ID header
// or a new UUID, and echoes it in the answer's Audit-Id header, as
// upstream does for every request whether audited or not.
func (s *Server) auditInit(w http.ResponseWriter, r *http.Request, received time.Time) *http.Request {
	id := r.Header.Get(audit.HeaderAuditID)
	if id == "" {
		id = uuid.NewString()
	}
	w.Header().Set(audit.HeaderAuditID, id)
	if !s.auditing() {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), auditStartKey{}, auditStart{id: types.UID(id), received: received}))
}

// anonymous is who a request to a public path is audited as when it
// brings no credentials that authenticate: upstream's anonymous user.
var anonymous = &User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}

// auditPublic starts the audit of a request to a public path (/healthz,
// ...), which is served without authentication: it is audited as the
// user its credentials name, if they authenticate, else as anonymous.
func (s *Server) auditPublic(w http.ResponseWriter, r *http.Request, info requestInfo) (http.ResponseWriter, *http.Request, *auditRecord) {
	if !s.auditing() {
		return w, r, nil
	}
	u := anonymous
	if r.Header.Get("Authorization") != "" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) {
		if au, err := s.authenticate(r); err == nil {
			u = au
		}
	}
	return s.auditBegin(w, r, info, u)
}

// auditBegin evaluates the policy for a request of user u (nil: the
// request failed authentication) and, when the request is audited,
// writes its RequestReceived event and returns the writer and request
// the rest of its handling must use, and its record, whose end must be
// deferred. It returns w, r and nil when the request is not audited.
//
// A request that failed authentication gets one event, at the
// ResponseStarted stage, with an empty user, as upstream's.
func (s *Server) auditBegin(w http.ResponseWriter, r *http.Request, info requestInfo, u *User) (http.ResponseWriter, *http.Request, *auditRecord) {
	if !s.auditing() {
		return w, r, nil
	}
	attrs := auditAttributes(r, u, info)
	cfg := s.cfg.AuditPolicy.Evaluate(&attrs)
	if cfg.Level == audit.LevelNone {
		return w, r, nil
	}
	st, ok := r.Context().Value(auditStartKey{}).(auditStart)
	if !ok { // a handler called directly, not through ServeHTTP
		st = auditStart{id: types.UID(uuid.NewString()), received: time.Now()}
	}
	ev := audit.NewEvent(r, st.id, cfg.Level, metav1.NewMicroTime(st.received))
	ev.Verb = attrs.Verb
	if u != nil {
		ev.User = userInfo(u)
	}
	if info.isResource {
		ev.ObjectRef = &audit.ObjectReference{Resource: info.resource, Namespace: info.namespace, Name: info.name,
			APIGroup: info.group, APIVersion: info.version, Subresource: info.sub}
	}
	ar := &auditRecord{sink: s.cfg.AuditSink, cfg: cfg, info: info, long: longRunning(info), ev: ev,
		final: audit.StageResponseComplete}
	if u == nil {
		ar.final = audit.StageResponseStarted
	} else {
		ar.emit(audit.StageRequestReceived)
	}
	// The request body, as the handler reads it: at the Request levels
	// to record it, and at Metadata for the name of a create, which is
	// not in its URL.
	if u != nil && info.isResource && r.Body != nil && r.Body != http.NoBody &&
		(!cfg.Level.Less(audit.LevelRequest) || (info.verb == "create" && info.name == "")) {
		ar.reqBody = &audit.BodyBuffer{Max: audit.MaxBodyBytes}
		ar.reqType = r.Header.Get("Content-Type")
		r = r.WithContext(r.Context())
		r.Body = audit.TeeBody(r.Body, ar.reqBody)
	}
	return &auditWriter{ResponseWriter: w, ar: ar}, r, ar
}

// auditAttributes are what the policy decides a request on: the
// authenticated user (impersonation comes after, as upstream's).
func auditAttributes(r *http.Request, u *User, info requestInfo) audit.Attributes {
	a := requestAttributes(r, u, info)
	if a.Verb == "" {
		a.Verb = strings.ToLower(r.Method)
	}
	attrs := audit.Attributes{Verb: a.Verb, ResourceRequest: a.ResourceRequest, APIGroup: a.APIGroup,
		Namespace: a.Namespace, Resource: a.Resource, Subresource: a.Subresource, Name: a.Name, Path: a.Path}
	if u != nil {
		attrs.User, attrs.Groups, attrs.Authenticated = u.Name, u.Groups, true
	}
	return attrs
}

func userInfo(u *User) authnv1.UserInfo {
	ui := authnv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		ui.Extra = make(map[string]authnv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			ui.Extra[k] = v
		}
	}
	return ui
}

// auditRecord is the audit event of one request as its handling fills it
// in. Its methods do nothing on a nil record (a request not audited).
type auditRecord struct {
	sink  AuditSink
	cfg   audit.RequestConfig
	info  requestInfo
	long  bool
	final audit.Stage // the last stage: ResponseComplete, or ResponseStarted for a 401

	mu       sync.Mutex
	ev       *audit.Event
	started  bool // the status line went out
	code     int
	notes    context.Context // the handlers' context: their annotations
	decision [2]string       // the authorization decision and reason, when asked
	decided  bool
	omits    []string // bodies not recorded, and why

	reqBody *audit.BodyBuffer
	reqType string
	// resp keeps the answer's body, when it is to be recorded or parsed
	// for a failure's Status; respType is its Content-Type. The writer
	// above the gzip writer keeps it when there is one (top), else the
	// one below.
	resp        *audit.BodyBuffer
	respType    string
	top         bool
	decidedBody bool
}

func (ar *auditRecord) omitted(why string) { ar.omits = append(ar.omits, why) }

// emit sends the event at stage, unless the policy omits it. ar.mu must
// be held, or the record not yet shared.
func (ar *auditRecord) emit(stage audit.Stage) {
	if ar.cfg.Omits(stage) {
		return
	}
	ar.ev.Stage = stage
	if stage == audit.StageRequestReceived {
		ar.ev.StageTimestamp = ar.ev.RequestReceivedTimestamp
	} else {
		ar.ev.StageTimestamp = metav1.NewMicroTime(time.Now())
	}
	ar.annotate()
	ar.sink.ProcessEvent(ar.ev)
}

// annotate sets the event's annotations: the authorization decision, the
// handlers' (AnnotateAudit) and the bodies left out.
func (ar *auditRecord) annotate() {
	var notes map[string]string
	if ar.notes != nil {
		notes = AuditAnnotations(ar.notes)
	}
	if !ar.decided && len(notes) == 0 && len(ar.omits) == 0 {
		return
	}
	if notes == nil {
		notes = make(map[string]string, 3)
	}
	if ar.decided {
		if ar.decision[0] != "" {
			notes[audit.AnnotationDecision] = ar.decision[0]
		}
		notes[audit.AnnotationReason] = ar.decision[1]
	}
	if len(ar.omits) > 0 {
		notes[audit.AnnotationOmitted] = strings.Join(ar.omits, "; ")
	}
	ar.ev.Annotations = notes
}

// impersonated records the user the request acts as, when it
// impersonates.
func (ar *auditRecord) impersonated(r *http.Request, u *User) {
	if ar == nil {
		return
	}
	im, ok := ImpersonationFrom(r.Context())
	if !ok {
		return
	}
	ui := userInfo(u)
	ar.mu.Lock()
	defer ar.mu.Unlock()
	ar.ev.ImpersonatedUser = &ui
	if im.Constraint != "" {
		ar.ev.AuthenticationMetadata = &audit.AuthenticationMetadata{ImpersonationConstraint: im.Constraint}
	}
}

// handlers records the context the handlers are given, whose audit
// annotations the event takes.
func (ar *auditRecord) handlers(ctx context.Context) {
	if ar == nil {
		return
	}
	ar.mu.Lock()
	ar.notes = ctx
	ar.mu.Unlock()
}

// uncompressed returns the writer a handler is given above the gzip
// writer g: it keeps the body as the handler writes it.
func (ar *auditRecord) uncompressed(g http.ResponseWriter) http.ResponseWriter {
	if ar == nil {
		return g
	}
	ar.mu.Lock()
	ar.top = true
	ar.mu.Unlock()
	return &auditWriter{ResponseWriter: g, ar: ar, top: true}
}

// header notes that the writer (top or not) had its status line
// written, with code and the header h.
func (ar *auditRecord) header(top bool, code int, h http.Header) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if !top && !ar.started {
		ar.started, ar.code = true, code
		if ar.long && ar.final != audit.StageResponseStarted {
			ar.setStatus()
			ar.emit(audit.StageResponseStarted)
		}
	}
	if top != ar.top || ar.decidedBody {
		return
	}
	ar.decidedBody = true
	// A failure's body is its Status; at RequestResponse a resource's
	// answer is recorded. A long-running request's stream is not.
	if code >= 400 || (ar.cfg.Level == audit.LevelRequestResponse && ar.info.isResource && !ar.long) {
		ar.resp = &audit.BodyBuffer{Max: audit.MaxBodyBytes}
		ar.respType = h.Get("Content-Type")
	}
}

func (ar *auditRecord) body(top bool, b []byte) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if top == ar.top && ar.resp != nil {
		_, _ = ar.resp.Write(b)
	}
}

// setStatus sets the event's responseStatus from the status code, and
// for a failure from the Status it answered with. ar.mu must be held.
func (ar *auditRecord) setStatus() {
	st := &metav1.Status{Code: int32(ar.code)}
	if ar.code >= 400 && ar.resp != nil {
		if body, ok := ar.resp.Bytes(); ok && len(body) > 0 {
			if obj, _, err := codecs.UniversalDeserializer().Decode(body, nil, &metav1.Status{}); err == nil {
				if s, ok := obj.(*metav1.Status); ok {
					st = &metav1.Status{Status: s.Status, Message: s.Message, Reason: s.Reason, Details: s.Details, Code: s.Code}
				}
			}
		}
	}
	ar.ev.ResponseStatus = st
}

// end writes the last event: ResponseComplete, or Panic when the
// handler panicked (the panic goes on). It must be deferred directly.
func (ar *auditRecord) end() {
	if ar == nil {
		return
	}
	if p := recover(); p != nil {
		ar.mu.Lock()
		ar.ev.ResponseStatus = &metav1.Status{Code: http.StatusInternalServerError, Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonInternalError, Message: fmt.Sprintf("APIServer panic'd: %v", p)}
		ar.emit(audit.StagePanic)
		ar.mu.Unlock()
		panic(p)
	}
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if !ar.started {
		// Nothing was written: the client went away, as upstream says.
		ar.ev.ResponseStatus = &metav1.Status{Code: http.StatusOK, Status: metav1.StatusSuccess, Message: "Connection closed early"}
		if ar.long {
			ar.emit(audit.StageResponseStarted)
		}
	} else {
		ar.setStatus()
	}
	ar.bodies()
	ar.emit(ar.final)
}

// bodies fills in the objectRef from the request's object, and the
// request and response objects at their levels. ar.mu must be held.
func (ar *auditRecord) bodies() {
	if ar.reqBody != nil {
		body, ok := ar.reqBody.Bytes()
		var obj runtime.Object // a protobuf body, decoded
		if ok && isProtobuf(ar.reqType) {
			obj, _, _ = codecs.UniversalDeserializer().Decode(body, nil, nil)
		}
		if ok && ar.ev.ObjectRef != nil && (ar.info.verb == "create" || ar.info.verb == "update") {
			if m, found := objectMetaOf(body, obj); found {
				m.Fill(ar.ev.ObjectRef)
			}
		}
		if !ar.cfg.Level.Less(audit.LevelRequest) {
			ar.ev.RequestObject = ar.record("requestObject", body, ok, ar.reqType, obj)
		}
	}
	if ar.cfg.Level == audit.LevelRequestResponse && ar.info.isResource && ar.resp != nil {
		body, ok := ar.resp.Bytes()
		var obj runtime.Object
		if ok && isProtobuf(ar.respType) {
			obj, _, _ = codecs.UniversalDeserializer().Decode(body, nil, nil)
		}
		ar.ev.ResponseObject = ar.record("responseObject", body, ok, ar.respType, obj)
	}
}

// record returns a body, of media type ct, as the event's JSON, or
// notes why not. A protobuf body is recorded as upstream records every
// body: its object (decoded as obj), encoded as JSON.
func (ar *auditRecord) record(what string, body []byte, complete bool, ct string, obj runtime.Object) json.RawMessage {
	if complete && isProtobuf(ct) && len(body) > 0 {
		var buf bytes.Buffer
		if obj == nil || mediaInfo(runtime.ContentTypeJSON).Serializer.Encode(obj, &buf) != nil {
			ar.omitted(what + ": protobuf body not decoded")
			return nil
		}
		body = buf.Bytes()
	}
	raw, why := audit.RecordBody(body, complete, ar.cfg.OmitManagedFields)
	if why != "" {
		if complete && ct != "" {
			why += " (" + ct + ")"
		}
		ar.omitted(what + ": " + why)
	}
	return raw
}

func isProtobuf(ct string) bool { return strings.HasPrefix(ct, runtime.ContentTypeProtobuf) }

// objectMetaOf returns the metadata of a request's object: obj's, when
// it was decoded, else the JSON body's.
func objectMetaOf(body []byte, obj runtime.Object) (audit.ObjectMeta, bool) {
	if obj == nil {
		return audit.ObjectMetaOf(body)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return audit.ObjectMeta{}, false
	}
	return audit.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()}, true
}

// auditWriter tells the request's record what is answered: the status
// line (for a long-running request, the ResponseStarted event), and the
// body where the record keeps it.
type auditWriter struct {
	http.ResponseWriter
	ar    *auditRecord
	top   bool
	wrote bool
}

func (w *auditWriter) WriteHeader(code int) {
	informational := code >= 100 && code < 200 && code != http.StatusSwitchingProtocols
	if !w.wrote && !informational {
		w.wrote = true
		w.ar.header(w.top, code, w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		w.ar.header(w.top, http.StatusOK, w.ResponseWriter.Header())
	}
	w.ar.body(w.top, b)
	return w.ResponseWriter.Write(b)
}

// FlushError is Flush for http.ResponseController: a flush sends the
// status line.
func (w *auditWriter) FlushError() error {
	if !w.wrote {
		w.wrote = true
		w.ar.header(w.top, http.StatusOK, w.ResponseWriter.Header())
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack is Hijack for http.ResponseController and for libraries that
// assert http.Hijacker: the protocol switches, as upstream's records it.
func (w *auditWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.wrote {
		w.wrote = true
		w.ar.header(w.top, http.StatusSwitchingProtocols, w.ResponseWriter.Header())
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach SetReadDeadline and the rest.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authorizeAudited is authorize, which records its decision in the
// request's audit event as upstream's annotations
// authorization.k8s.io/decision and authorization.k8s.io/reason.
func (s *Server) authorizeAudited(r *http.Request, u *User, info requestInfo, ar *auditRecord) error {
	if ar == nil {
		return s.authorize(r, u, info)
	}
	d := &authzDecision{}
	err := s.authorize(r.WithContext(context.WithValue(r.Context(), authzDecisionKey{}, d)), u, info)
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if d.asked {
		ar.decided = true
		switch {
		case d.allowed:
			ar.decision = [2]string{audit.DecisionAllow, d.reason}
		case d.err != nil:
			ar.decision = [2]string{"", audit.ReasonError}
		default:
			ar.decision = [2]string{audit.DecisionForbid, d.reason}
		}
	}
	return err
}

// authzDecision is where the request's own authorization leaves its
// answer (not the impersonation's or a review's, which are asked
// without it).
type authzDecision struct {
	asked   bool
	allowed bool
	reason  string
	err     error
}

type authzDecisionKey struct{}

// recordingAuthorizer is the server's Authorizer when auditing: it
// leaves the decisions asked for with an authzDecision in their context
// there.
type recordingAuthorizer struct{ Authorizer }

func (a recordingAuthorizer) Authorize(ctx context.Context, attrs Attributes) (bool, string, error) {
	ok, reason, err := a.Authorizer.Authorize(ctx, attrs)
	if d, _ := ctx.Value(authzDecisionKey{}).(*authzDecision); d != nil && !d.asked {
		*d = authzDecision{asked: true, allowed: ok, reason: reason, err: err}
	}
	return ok, reason, err
}

// recordingRuleLister keeps the RuleLister of the authorizer it wraps.
type recordingRuleLister struct {
	recordingAuthorizer
	lister RuleLister
}

func (a recordingRuleLister) RulesFor(ctx context.Context, u *User, namespace string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	return a.lister.RulesFor(ctx, u, namespace)
}

// auditedAuthorizer returns cfg's Authorizer, wrapped to record decisions
// when cfg audits requests.
func auditedAuthorizer(cfg Config) Authorizer {
	if cfg.AuditPolicy == nil || cfg.AuditSink == nil {
		return cfg.Authorizer
	}
	rec := recordingAuthorizer{cfg.Authorizer}
	if l, ok := cfg.Authorizer.(RuleLister); ok {
		return recordingRuleLister{rec, l}
	}
	return rec
}
