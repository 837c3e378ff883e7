package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/flowcontrol"
	fcregistry "github.com/skiff-io/skiff/internal/registry/flowcontrol"
)

func testFlowControl(tb testing.TB) *flowcontrol.Controller {
	tb.Helper()
	fc := flowcontrol.New(flowcontrol.Config{})
	pls := append(fcregistry.MandatoryPriorityLevels(), fcregistry.SuggestedPriorityLevels()...)
	fss := append(fcregistry.MandatoryFlowSchemas(), fcregistry.SuggestedFlowSchemas()...)
	for _, pl := range pls {
		pl.UID = types.UID("pl-" + pl.Name)
	}
	for _, fs := range fss {
		fs.UID = types.UID("fs-" + fs.Name)
	}
	fc.Configure(pls, fss)
	return fc
}

var (
	loopbackUser = &User{Name: "system:apiserver", Groups: []string{"system:masters", "system:authenticated"}}
	someUser     = &User{Name: "alice", Groups: []string{"system:authenticated"}}
)

// Every classified answer carries the UIDs of its flow schema and priority
// level; exec and the like are not classified, watches are but run at once.
func TestPriorityAndFairnessHeaders(t *testing.T) {
	p := &priorityAndFairness{fc: testFlowControl(t)}
	for _, tt := range []struct {
		name, method, url string
		user              *User
		fs, pl            string
	}{
		{"the server's own components", "GET", "/api/v1/namespaces/default/pods/x", loopbackUser, "fs-exempt", "pl-exempt"},
		{"a user", "GET", "/api/v1/namespaces/default/pods/x", someUser, "fs-global-default", "pl-global-default"},
		{"a user's watch", "GET", "/api/v1/namespaces/default/pods?watch=true", someUser, "fs-global-default", "pl-global-default"},
		{"a user's discovery", "GET", "/apis", someUser, "fs-global-default", "pl-global-default"},
		{"a user's exec", "POST", "/api/v1/namespaces/default/pods/x/exec", someUser, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, nil)
			w := httptest.NewRecorder()
			release, err := p.admit(w, r, parseRequest(r), tt.user)
			if err != nil {
				t.Fatal(err)
			}
			release()
			if got := w.Header().Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID); got != tt.fs {
				t.Errorf("flow schema header %q, want %q", got, tt.fs)
			}
			if got := w.Header().Get(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID); got != tt.pl {
				t.Errorf("priority level header %q, want %q", got, tt.pl)
			}
		})
	}
}

// A rejection is upstream's 429 with a Retry-After.
func TestPriorityAndFairnessRejects(t *testing.T) {
	p := &priorityAndFairness{fc: testFlowControl(t)}
	// catch-all rejects rather than queues: 13 seats.
	nobody := &User{Name: "nobody"}
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/x", nil)
	var releases []func()
	for range 13 {
		release, err := p.admit(httptest.NewRecorder(), r, parseRequest(r), nobody)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, release)
	}
	_, err := p.admit(httptest.NewRecorder(), r, parseRequest(r), nobody)
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("past the limit: %v, want 429", err)
	}
	if secs, ok := apierrors.SuggestsClientDelay(err); !ok || secs < 1 {
		t.Errorf("Retry-After %d (%v), want at least 1", secs, ok)
	}
	for _, release := range releases {
		release()
	}
}

// The cost the server's own components pay per request, beside the
// max-in-flight bounds' (what runs with --enable-priority-and-fairness
// false).
func BenchmarkAdmit(b *testing.B) {
	r := httptest.NewRequest("POST", "/api/v1/namespaces/bench/pods/p-1/binding", nil)
	info := parseRequest(r)
	for _, bc := range []struct {
		name string
		a    admitter
		u    *User
	}{
		{"inflight", newInFlight(DefaultMaxRequestsInFlight, DefaultMaxMutatingRequestsInFlight), loopbackUser},
		{"apf-exempt", &priorityAndFairness{fc: testFlowControl(b)}, loopbackUser},
		{"apf-global-default", &priorityAndFairness{fc: testFlowControl(b)}, someUser},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &headerOnlyWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				release, err := bc.a.admit(w, r, info, bc.u)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

type headerOnlyWriter struct{ h http.Header }

func (w *headerOnlyWriter) Header() http.Header         { return w.h }
func (w *headerOnlyWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerOnlyWriter) WriteHeader(int)             {}
