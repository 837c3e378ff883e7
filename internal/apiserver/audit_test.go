package apiserver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/audit"
)

// eventLog is an AuditSink that keeps a copy of every event.
type eventLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (l *eventLog) ProcessEvent(ev *audit.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	var cp audit.Event
	if err := json.Unmarshal(b, &cp); err != nil {
		panic(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, cp)
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.events
	l.events = nil
	return evs
}

func stagesOf(evs []audit.Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, string(ev.Stage))
	}
	return strings.Join(s, ",")
}

// bearerTokens authenticates "Bearer <user>" as that user, and refuses
// "Bearer bad".
type bearerTokens struct{}

func (bearerTokens) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	name, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || name == "bad" {
		return nil, false, nil
	}
	return &User{Name: name, UID: "uid-" + name, Groups: []string{"system:authenticated"}, Extra: map[string][]string{"k": {"v"}}}, true, nil
}

const auditTestPolicy = `
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*"]
- level: None
  users: [quiet]
- level: RequestResponse
  resources: [{group: authentication.k8s.io, resources: [selfsubjectreviews]}]
- level: Request
  resources: [{group: authorization.k8s.io}]
- level: Metadata
`

func newAuditTestServer(t *testing.T, policy string) (*Server, *eventLog) {
	t.Helper()
	p, _, err := audit.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	sink := &eventLog{}
	s, err := New(Config{Authenticator: bearerTokens{}, Authorizer: grants{
		"alice|create|authentication.k8s.io|selfsubjectreviews||*",
		"quiet|create|authentication.k8s.io|selfsubjectreviews||*",
		"alice|impersonate||users||bob",
		"alice|create|authorization.k8s.io|selfsubjectaccessreviews||*",
		"bob|create|authentication.k8s.io|selfsubjectreviews||*",
	}, AuditPolicy: p, AuditSink: sink})
	if err != nil {
		t.Fatal(err)
	}
	return s, sink
}

func do(t *testing.T, s *Server, method, path, token, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "10.1.2.3:4567"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "audit-test")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

const ssrPath = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

func TestAuditRequest(t *testing.T) {
	s, log := newAuditTestServer(t, auditTestPolicy)
	body := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview","metadata":{"name":"me"}}`
	w := do(t, s, "POST", ssrPath, "alice", body)
	if w.Code != http.StatusCreated {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	evs := log.take()
	if stagesOf(evs) != "RequestReceived,ResponseComplete" {
		t.Fatalf("stages %s", stagesOf(evs))
	}
	ev := evs[1]
	if id := w.Header().Get("Audit-Id"); id == "" || ev.AuditID != evs[0].AuditID || string(ev.AuditID) != id {
		t.Errorf("audit IDs %q %q, header %q", evs[0].AuditID, ev.AuditID, id)
	}
	want := audit.Event{
		TypeMeta:   metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:      audit.LevelRequestResponse,
		AuditID:    ev.AuditID,
		Stage:      audit.StageResponseComplete,
		RequestURI: ssrPath,
		Verb:       "create",
		User: authnv1.UserInfo{Username: "alice", UID: "uid-alice", Groups: []string{"system:authenticated"},
			Extra: map[string]authnv1.ExtraValue{"k": {"v"}}},
		SourceIPs:      []string{"10.1.2.3"},
		UserAgent:      "audit-test",
		ObjectRef:      &audit.ObjectReference{Resource: "selfsubjectreviews", Name: "me", APIGroup: "authentication.k8s.io", APIVersion: "v1"},
		ResponseStatus: &metav1.Status{Code: 201},
		RequestObject:  json.RawMessage(body),
		ResponseObject: ev.ResponseObject,
		Annotations:    map[string]string{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},

		RequestReceivedTimestamp: ev.RequestReceivedTimestamp,
		StageTimestamp:           ev.StageTimestamp,
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.Contains(string(ev.ResponseObject), `"username":"alice"`) {
		t.Errorf("responseObject %s", ev.ResponseObject)
	}
	if evs[0].StageTimestamp != evs[0].RequestReceivedTimestamp || ev.StageTimestamp.Before(&ev.RequestReceivedTimestamp) {
		t.Errorf("timestamps %v %v, %v", evs[0].RequestReceivedTimestamp, evs[0].StageTimestamp, ev.StageTimestamp)
	}
	if evs[0].Annotations != nil || evs[0].ResponseStatus != nil || evs[0].RequestObject != nil {
		t.Errorf("RequestReceived has what comes later: %+v", evs[0])
	}

	// A client's Audit-ID is kept.
	do(t, s, "POST", ssrPath, "alice", body, "Audit-ID", "my-id")
	if evs := log.take(); len(evs) != 2 || evs[1].AuditID != "my-id" {
		t.Errorf("client's audit ID: %+v", evs)
	}
}

func TestAuditRefused(t *testing.T) {
	s, log := newAuditTestServer(t, auditTestPolicy)

	// Forbidden: the decision, and the Status.
	w := do(t, s, "GET", "/api/v1/namespaces/ns1/secrets/s1", "alice", "")
	if w.Code != http.StatusForbidden {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	evs := log.take()
	if stagesOf(evs) != "RequestReceived,ResponseComplete" {
		t.Fatalf("stages %s", stagesOf(evs))
	}
	ev := evs[1]
	wantStatus := &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonForbidden, Code: 403,
		Message: `secrets "s1" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "ns1"`,
		Details: &metav1.StatusDetails{Name: "s1", Kind: "secrets"}}
	if diff := cmp.Diff(wantStatus, ev.ResponseStatus); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if ev.Annotations["authorization.k8s.io/decision"] != "forbid" || ev.Verb != "get" || ev.Level != audit.LevelMetadata ||
		*ev.ObjectRef != (audit.ObjectReference{Resource: "secrets", Namespace: "ns1", Name: "s1", APIVersion: "v1"}) {
		t.Errorf("event %+v", ev)
	}

	// The Status in protobuf, as client-go may ask.
	do(t, s, "GET", "/api/v1/namespaces/ns1/secrets/s1", "alice", "", "Accept", "application/vnd.kubernetes.protobuf")
	if evs := log.take(); len(evs) != 2 || evs[1].ResponseStatus.Reason != metav1.StatusReasonForbidden {
		t.Errorf("protobuf status: %+v", evs)
	}

	// Unauthenticated: one event, at ResponseStarted, with no user.
	w = do(t, s, "GET", "/api/v1/namespaces", "bad", "")
	if w.Code != http.StatusUnauthorized || w.Header().Get("Audit-Id") == "" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	evs = log.take()
	if stagesOf(evs) != "ResponseStarted" {
		t.Fatalf("stages %s", stagesOf(evs))
	}
	ev = evs[0]
	if ev.User.Username != "" || ev.Verb != "list" || ev.Annotations != nil ||
		ev.ResponseStatus.Code != 401 || ev.ResponseStatus.Reason != metav1.StatusReasonUnauthorized {
		t.Errorf("event %+v %+v", ev, ev.ResponseStatus)
	}
}

func TestAuditImpersonation(t *testing.T) {
	s, log := newAuditTestServer(t, auditTestPolicy)
	w := do(t, s, "POST", ssrPath, "alice", `{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1"}`, "Impersonate-User", "bob")
	if w.Code != http.StatusCreated {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	evs := log.take()
	if stagesOf(evs) != "RequestReceived,ResponseComplete" {
		t.Fatalf("stages %s", stagesOf(evs))
	}
	// The policy saw alice (the RequestReceived event has not met bob
	// yet, as upstream's); the request is bob's.
	if evs[0].User.Username != "alice" || evs[0].ImpersonatedUser != nil {
		t.Errorf("RequestReceived: %+v", evs[0])
	}
	ev := evs[1]
	if ev.User.Username != "alice" || ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != "bob" ||
		ev.AuthenticationMetadata != nil || ev.Annotations["authorization.k8s.io/decision"] != "allow" {
		t.Errorf("event %+v, impersonated %+v", ev, ev.ImpersonatedUser)
	}
	if !strings.Contains(string(ev.ResponseObject), `"username":"bob"`) {
		t.Errorf("responseObject %s", ev.ResponseObject)
	}

	// A refused impersonation is audited as the requestor's.
	w = do(t, s, "POST", ssrPath, "alice", `{}`, "Impersonate-User", "carol")
	if w.Code != http.StatusForbidden {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	evs = log.take()
	if len(evs) != 2 || evs[1].User.Username != "alice" || evs[1].ImpersonatedUser != nil || evs[1].ResponseStatus.Code != 403 {
		t.Errorf("refused impersonation: %+v", evs)
	}
}

func TestAuditLevels(t *testing.T) {
	s, log := newAuditTestServer(t, auditTestPolicy)

	// None: by user, by path.
	do(t, s, "POST", ssrPath, "quiet", `{}`)
	do(t, s, "GET", "/healthz", "", "")
	do(t, s, "GET", "/healthz/etcd", "alice", "")
	if evs := log.take(); len(evs) != 0 {
		t.Errorf("None rules: %+v", evs)
	}

	// A public path is audited as the user its credentials name, or as
	// anonymous.
	do(t, s, "GET", "/livez", "", "")
	do(t, s, "GET", "/livez", "alice", "")
	evs := log.take()
	if stagesOf(evs) != "RequestReceived,ResponseComplete,RequestReceived,ResponseComplete" {
		t.Fatalf("stages %s", stagesOf(evs))
	}
	if u := evs[1].User; u.Username != "system:anonymous" || u.Groups[0] != "system:unauthenticated" || evs[1].ObjectRef != nil || evs[1].Verb != "get" {
		t.Errorf("anonymous: %+v", evs[1])
	}
	if evs[3].User.Username != "alice" {
		t.Errorf("with credentials: %+v", evs[3])
	}

	// Request: the request body, not the response's.
	body := `{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"resourceAttributes":{"verb":"get","resource":"pods"}}}`
	if w := do(t, s, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "alice", body); w.Code != http.StatusCreated {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	evs = log.take()
	if len(evs) != 2 || string(evs[1].RequestObject) != body || evs[1].ResponseObject != nil || evs[1].Level != audit.LevelRequest {
		t.Errorf("Request level: %+v", evs)
	}

	// A protobuf body is recorded as JSON, as upstream's.
	ssar := &authorizationv1.SelfSubjectAccessReview{TypeMeta: metav1.TypeMeta{Kind: "SelfSubjectAccessReview", APIVersion: "authorization.k8s.io/v1"},
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods"}}}
	pb, err := runtime.Encode(mediaInfo(runtime.ContentTypeProtobuf).Serializer, ssar)
	if err != nil {
		t.Fatal(err)
	}
	if w := do(t, s, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "alice", string(pb), "Content-Type", runtime.ContentTypeProtobuf); w.Code != http.StatusCreated {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	evs = log.take()
	if len(evs) != 2 || !strings.HasPrefix(string(evs[1].RequestObject), `{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1"`) ||
		!strings.Contains(string(evs[1].RequestObject), `"resourceAttributes":{"verb":"get","resource":"pods"}`) {
		t.Errorf("protobuf body: %s", evs[1].RequestObject)
	}
	// And so is a protobuf answer.
	w := do(t, s, "POST", ssrPath, "alice", `{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1"}`, "Accept", runtime.ContentTypeProtobuf)
	if w.Code != http.StatusCreated || w.Header().Get("Content-Type") != runtime.ContentTypeProtobuf {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	evs = log.take()
	if len(evs) != 2 || !strings.Contains(string(evs[1].ResponseObject), `"username":"alice"`) {
		t.Errorf("protobuf answer: %s", evs[1].ResponseObject)
	}
	// A body that is neither is not recorded, and the event says why.
	do(t, s, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "alice", "k8s\x00...", "Content-Type", runtime.ContentTypeProtobuf)
	do(t, s, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "alice", "kind: SelfSubjectAccessReview\n", "Content-Type", "application/yaml")
	evs = log.take()
	if len(evs) != 4 || evs[1].RequestObject != nil || evs[1].Annotations[audit.AnnotationOmitted] != "requestObject: protobuf body not decoded" ||
		evs[3].RequestObject != nil || evs[3].Annotations[audit.AnnotationOmitted] != "requestObject: not JSON (application/yaml)" {
		t.Errorf("bodies not recorded: %+v", evs)
	}

	// Policy-level omitStages.
	s, log = newAuditTestServer(t, "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n")
	do(t, s, "POST", ssrPath, "alice", `{}`)
	if evs := log.take(); stagesOf(evs) != "ResponseComplete" {
		t.Errorf("stages %s", stagesOf(evs))
	}
}

// A long-running request has a ResponseStarted event when its status
// line goes out; a panic a Panic event.
func TestAuditStages(t *testing.T) {
	s, log := newAuditTestServer(t, auditTestPolicy)
	alice := &User{Name: "alice"}
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods?watch=true", nil)
	info := parseRequest(r)
	w, _, ar := s.auditBegin(httptest.NewRecorder(), r, info, alice)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"type":"ADDED"}`))
	if evs := log.take(); stagesOf(evs) != "RequestReceived,ResponseStarted" || evs[1].ResponseStatus.Code != 200 {
		t.Fatalf("watch: %+v", evs)
	}
	ar.end()
	if evs := log.take(); stagesOf(evs) != "ResponseComplete" || evs[0].Verb != "watch" {
		t.Fatalf("watch end: %+v", evs)
	}

	// A long-running request that never answered.
	_, _, ar = s.auditBegin(httptest.NewRecorder(), r, info, alice)
	ar.end()
	if evs := log.take(); stagesOf(evs) != "RequestReceived,ResponseStarted,ResponseComplete" || evs[2].ResponseStatus.Message != "Connection closed early" {
		t.Fatalf("no answer: %+v", evs)
	}

	// A panic.
	r = httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/p", nil)
	_, _, ar = s.auditBegin(httptest.NewRecorder(), r, parseRequest(r), alice)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic to go on", p)
			}
		}()
		defer ar.end()
		panic("boom")
	}()
	if evs := log.take(); stagesOf(evs) != "RequestReceived,Panic" || evs[1].ResponseStatus.Code != 500 || evs[1].ResponseStatus.Message != "APIServer panic'd: boom" {
		t.Fatalf("panic: %+v", evs)
	}
}

// Behind gzip, the response object is recorded as the handler wrote it.
func TestAuditGzip(t *testing.T) {
	s, log := newAuditTestServer(t, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/configmaps", nil)
	rec := httptest.NewRecorder()
	w, _, ar := s.auditBegin(rec, r, parseRequest(r), &User{Name: "alice"})
	g := newGzipWriter(w)
	top := ar.uncompressed(g)
	top.Header().Set("Content-Type", "application/json")
	top.WriteHeader(http.StatusOK)
	list := `{"kind":"ConfigMapList","items":[{"data":{"k":"` + strings.Repeat("v", 200<<10) + `"}}]}`
	_, _ = io.WriteString(top, list)
	g.finish()
	ar.end()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("not gzipped: %v", rec.Header())
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != list {
		t.Fatal("the client got another body")
	}
	evs := log.take()
	if len(evs) != 2 || string(evs[1].ResponseObject) != list || evs[1].ResponseStatus.Code != 200 {
		t.Errorf("events %s", stagesOf(evs))
	}
}

// Without a policy nothing is audited, and the Audit-Id header is set
// all the same.
func TestAuditOff(t *testing.T) {
	s, err := New(Config{Authenticator: bearerTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.cfg.Authorizer.(AlwaysAllow); !ok {
		t.Errorf("authorizer %T, want AlwaysAllow unwrapped", s.cfg.Authorizer)
	}
	w := do(t, s, "POST", ssrPath, "alice", `{}`)
	if w.Code != http.StatusCreated || w.Header().Get("Audit-Id") == "" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}

// A hijacked connection (exec, attach, port-forward) is a protocol
// switch: ResponseStarted with 101, whether the handler hijacks through
// http.ResponseController or asserts http.Hijacker.
func TestAuditHijack(t *testing.T) {
	s, log := newAuditTestServer(t, auditTestPolicy)
	for _, how := range []string{"controller", "assertion"} {
		t.Run(how, func(t *testing.T) {
			handled := make(chan struct{})
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(handled)
				info := parseRequest(r)
				w, r, ar := s.auditBegin(w, r, info, &User{Name: "alice"})
				defer ar.end()
				var conn net.Conn
				var err error
				if how == "controller" {
					conn, _, err = http.NewResponseController(w).Hijack()
				} else {
					conn, _, err = rawWriter(w).(http.Hijacker).Hijack()
				}
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
			}))
			defer hs.Close()
			resp, err := http.Post(hs.URL+"/api/v1/namespaces/default/pods/p/exec?command=ls", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// Close does not wait for the handler of a hijacked
			// connection: the handler says when it has returned.
			<-handled
			hs.Close()
			evs := log.take()
			if stagesOf(evs) != "RequestReceived,ResponseStarted,ResponseComplete" || evs[1].ResponseStatus.Code != 101 ||
				evs[2].ObjectRef.Subresource != "exec" || evs[2].Verb != "create" {
				t.Errorf("events %+v", evs)
			}
		})
	}
}
