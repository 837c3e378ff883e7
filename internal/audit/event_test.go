package audit

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// An event encodes as upstream's audit.k8s.io/v1 Event, one line, with
// microsecond timestamps.
func TestEncode(t *testing.T) {
	r := httptest.NewRequest("POST", "https://example.com/api/v1/namespaces/default/configmaps?fieldManager=kubectl", nil)
	r.RemoteAddr = "10.0.0.2:5555"
	r.Header.Set("X-Forwarded-For", "192.168.1.1")
	r.Header.Set("User-Agent", "kubectl/v1.37.0")
	received := metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	ev := NewEvent(r, "8b1c3e1a-0000-4000-8000-000000000001", LevelRequestResponse, received)
	ev.Stage = StageResponseComplete
	ev.StageTimestamp = metav1.NewMicroTime(received.Add(1500 * time.Microsecond))
	ev.Verb = "create"
	ev.User = authnv1.UserInfo{Username: "alice", UID: "u1", Groups: []string{"dev", "system:authenticated"},
		Extra: map[string]authnv1.ExtraValue{"team": {"blue"}}}
	ev.ImpersonatedUser = &authnv1.UserInfo{Username: "bob", Groups: []string{"system:authenticated"}}
	ev.AuthenticationMetadata = &AuthenticationMetadata{ImpersonationConstraint: "impersonate:user-info"}
	ev.ObjectRef = &ObjectReference{Resource: "configmaps", Namespace: "default", Name: "cm", APIVersion: "v1"}
	ev.ResponseStatus = &metav1.Status{Code: 201}
	ev.RequestObject = json.RawMessage(`{"kind":"ConfigMap",
  "data": {"k": "v"}}`)
	ev.ResponseObject = json.RawMessage(`{"kind":"ConfigMap"}`)
	ev.Annotations = map[string]string{AnnotationDecision: DecisionAllow, AnnotationReason: ""}

	b, err := Encode([]byte("previous\n"), ev)
	if err != nil {
		t.Fatal(err)
	}
	const want = `previous
{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"8b1c3e1a-0000-4000-8000-000000000001",` +
		`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps?fieldManager=kubectl","verb":"create",` +
		`"user":{"username":"alice","uid":"u1","groups":["dev","system:authenticated"],"extra":{"team":["blue"]}},` +
		`"impersonatedUser":{"username":"bob","groups":["system:authenticated"]},` +
		`"authenticationMetadata":{"impersonationConstraint":"impersonate:user-info"},` +
		`"sourceIPs":["192.168.1.1","10.0.0.2"],"userAgent":"kubectl/v1.37.0",` +
		`"objectRef":{"resource":"configmaps","namespace":"default","name":"cm","apiVersion":"v1"},` +
		`"responseStatus":{"metadata":{},"code":201},` +
		`"requestObject":{"kind":"ConfigMap","data":{"k":"v"}},"responseObject":{"kind":"ConfigMap"},` +
		`"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z","stageTimestamp":"2026-01-02T03:04:05.124956Z",` +
		`"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A failure's status; an empty user (a request that failed
	// authentication) is an empty object, as upstream's.
	ev = NewEvent(r, "id", LevelMetadata, received)
	ev.ResponseStatus = &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonForbidden, Message: "no", Code: 403}
	b, err = Encode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"user":{}`, `"responseStatus":{"metadata":{},"status":"Failure","message":"no","reason":"Forbidden","code":403}`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s lacks %s", b, s)
		}
	}
	for _, s := range []string{"requestObject", "responseObject", "objectRef", "impersonatedUser", "annotations"} {
		if strings.Contains(string(b), s) {
			t.Errorf("%s has %s", b, s)
		}
	}
}

func TestNewEventUserAgent(t *testing.T) {
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("User-Agent", strings.Repeat("a", 2000))
	ev := NewEvent(r, "id", LevelMetadata, metav1.NowMicro())
	if len(ev.UserAgent) != maxUserAgent+len(userAgentSuffix) || !strings.HasSuffix(ev.UserAgent, "...TRUNCATED") {
		t.Errorf("user agent of %d bytes: %q...", len(ev.UserAgent), ev.UserAgent[:20])
	}
}

func TestRecordBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		complete bool
		omitMF   bool
		want     string
		why      string
	}{
		{"json", `{"a": 1}`, true, false, `{"a": 1}`, ""},
		{"empty", ``, true, false, ``, ""},
		{"not json", "a: 1\n", true, false, ``, "not JSON"},
		{"too large", `{}`, false, false, ``, "over 3145728 bytes"},
		{"managed fields kept", `{"metadata":{"name":"a","managedFields":[{}]}}`, true, false, `{"metadata":{"name":"a","managedFields":[{}]}}`, ""},
		{"managed fields omitted", `{"kind":"Pod","metadata":{"name":"a","managedFields":[{"manager":"x"}]},"spec":{}}`, true, true,
			`{"kind":"Pod","metadata":{"name":"a"},"spec":{}}`, ""},
		{"list items", `{"kind":"PodList","metadata":{},"items":[{"metadata":{"name":"a","managedFields":[]}},{"metadata":{"name":"b"}}]}`, true, true,
			`{"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}],"kind":"PodList","metadata":{}}`, ""},
		{"table rows", `{"kind":"Table","rows":[{"cells":[1],"object":{"metadata":{"name":"a","managedFields":[]}}}]}`, true, true,
			`{"kind":"Table","rows":[{"cells":[1],"object":{"metadata":{"name":"a"}}}]}`, ""},
		{"a managedFields that is not metadata's", `{"data":{"managedFields":"x"}}`, true, true, `{"data":{"managedFields":"x"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := RecordBody([]byte(tc.body), tc.complete, tc.omitMF)
			if string(got) != tc.want || why != tc.why {
				t.Errorf("got %s, %q; want %s, %q", got, why, tc.want, tc.why)
			}
		})
	}
}

func TestObjectMetaOf(t *testing.T) {
	m, ok := ObjectMetaOf([]byte(`{"apiVersion":"v1","data":{"a":"b"},"kind":"Secret","metadata":{"name":"s","namespace":"ns","uid":"u","resourceVersion":"7"}}`))
	if !ok || m != (ObjectMeta{Name: "s", Namespace: "ns", UID: "u", ResourceVersion: "7"}) {
		t.Errorf("got %+v %v", m, ok)
	}
	ref := &ObjectReference{Resource: "secrets", Namespace: "ns"}
	m.Fill(ref)
	if *ref != (ObjectReference{Resource: "secrets", Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "7"}) {
		t.Errorf("filled %+v", ref)
	}
	for _, body := range []string{"", "k8s\x00\x0a", "[1]", `{"metadata":`} {
		if _, ok := ObjectMetaOf([]byte(body)); ok {
			t.Errorf("%q: ok", body)
		}
	}
}

func TestBodyBuffer(t *testing.T) {
	b := &BodyBuffer{Max: 4}
	_, _ = b.Write([]byte("ab"))
	_, _ = b.Write([]byte("cd"))
	if got, ok := b.Bytes(); !ok || string(got) != "abcd" {
		t.Errorf("got %q %v", got, ok)
	}
	_, _ = b.Write([]byte("e"))
	if got, ok := b.Bytes(); ok || got != nil {
		t.Errorf("over the bound: %q %v", got, ok)
	}
}

// Encode writes what encoding/json writes for an Event.
func TestEncodeAsEncodingJSON(t *testing.T) {
	tricky := "a<b>&c \"q\" \\ \x01\b\f\n\r\t é日本 \u2028\u2029 \xff end"
	full := &Event{
		TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: GroupVersion},
		Level:    LevelRequest, AuditID: "id-" + types.UID(tricky), Stage: StagePanic,
		RequestURI: "/api?x=" + tricky, Verb: tricky,
		User: authnv1.UserInfo{Username: tricky, UID: "u", Groups: []string{"a", tricky},
			Extra: map[string]authnv1.ExtraValue{"z": {"1"}, "a": nil, tricky: {}}},
		ImpersonatedUser:       &authnv1.UserInfo{},
		AuthenticationMetadata: &AuthenticationMetadata{},
		SourceIPs:              []string{"::1"},
		UserAgent:              tricky,
		ObjectRef: &ObjectReference{Resource: "r", Namespace: "n", Name: tricky, UID: "u", APIGroup: "g", APIVersion: "v",
			ResourceVersion: "1", Subresource: "s"},
		ResponseStatus:           &metav1.Status{Status: "Failure", Message: tricky, Reason: "Invalid", Code: 422},
		RequestObject:            json.RawMessage(` { "a" : [1, 2] } `),
		RequestReceivedTimestamp: metav1.NewMicroTime(time.Date(2026, 1, 1, 0, 0, 0, 999, time.FixedZone("X", 3600))),
		Annotations:              map[string]string{"b": tricky, "a": ""},
	}
	withDetails := *full
	withDetails.ResponseStatus = &metav1.Status{Code: 422, Details: &metav1.StatusDetails{Name: "x",
		Causes: []metav1.StatusCause{{Type: "FieldValueInvalid", Message: "bad", Field: "spec"}}}}
	for name, ev := range map[string]*Event{"empty": {}, "full": full, "details": &withDetails,
		"zero status": {ResponseStatus: &metav1.Status{}}} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Encode(nil, ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want)+"\n", string(got)); diff != "" {
				t.Errorf("(-encoding/json +Encode):\n%s", diff)
			}
		})
	}
	// A body that is not JSON fails the event rather than the log.
	if _, err := Encode(nil, &Event{RequestObject: json.RawMessage("{")}); err == nil {
		t.Error("no error for a bad body")
	}
}
