package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRequestTimeout(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  time.Duration
		err   string
	}{
		{"", time.Minute, ""},
		{"timeout=5s", 5 * time.Second, ""},
		{"timeout=0s", time.Minute, ""},
		{"timeout=2m", time.Minute, ""}, // never longer than the server's
		{"timeout=soon", 0, "invalid timeout specified in the request URL"},
	} {
		r := httptest.NewRequest("GET", "/api/v1/pods?"+tc.query, nil)
		got, err := requestTimeout(r, time.Minute)
		if tc.err != "" {
			if code, msg := status(err); code != 400 || !strings.Contains(msg, tc.err) {
				t.Errorf("%q: got %d %q, want 400 %q", tc.query, code, msg, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %v %v, want %v", tc.query, got, err, tc.want)
		}
	}
}

func TestServeWithTimeout(t *testing.T) {
	t.Run("handler too slow", func(t *testing.T) {
		w := httptest.NewRecorder()
		returned, late := make(chan struct{}), make(chan error, 1)
		serveWithTimeout(w, httptest.NewRequest("GET", "/api/v1/pods", nil), 50*time.Millisecond, func(hw http.ResponseWriter, r *http.Request) {
			<-returned
			hw.Header().Set("X-Late", "1")
			_, err := hw.Write([]byte("late"))
			late <- err
		})
		close(returned)
		var st metav1.Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || w.Code != 504 || st.Reason != metav1.StatusReasonTimeout ||
			st.Message != "Timeout: request did not complete within requested timeout - context deadline exceeded" {
			t.Fatalf("got %d %q (%v), want upstream's 504", w.Code, w.Body.String(), err)
		}
		if err := <-late; err != http.ErrHandlerTimeout {
			t.Fatalf("a write after the deadline: %v, want ErrHandlerTimeout", err)
		}
		if w.Header().Get("X-Late") != "" || strings.Contains(w.Body.String(), "late") {
			t.Fatal("what the handler wrote after the deadline reached the client")
		}
	})
	t.Run("answer begun", func(t *testing.T) {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		release := make(chan struct{})
		defer close(release)
		serveWithTimeout(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v1/pods", nil), 50*time.Millisecond, func(hw http.ResponseWriter, r *http.Request) {
			_, _ = hw.Write([]byte(`{"kind":`))
			<-release
		})
		t.Fatal("serveWithTimeout returned")
	})
	t.Run("answer to the deadline", func(t *testing.T) {
		w := httptest.NewRecorder()
		serveWithTimeout(w, httptest.NewRequest("GET", "/api/v1/pods", nil), 50*time.Millisecond, func(hw http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			writeError(hw, r, requestTimedOut())
		})
		if w.Code != 504 {
			t.Fatalf("got %d %q, want the handler's 504", w.Code, w.Body.String())
		}
	})
	t.Run("handler panics", func(t *testing.T) {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the handler's panic", p)
			}
		}()
		serveWithTimeout(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v1/pods", nil), time.Minute, func(http.ResponseWriter, *http.Request) {
			panic("boom")
		})
	})
	t.Run("in time", func(t *testing.T) {
		w := httptest.NewRecorder()
		serveWithTimeout(w, httptest.NewRequest("GET", "/api/v1/pods", nil), time.Minute, func(hw http.ResponseWriter, r *http.Request) {
			if _, ok := r.Context().Deadline(); !ok {
				t.Error("no deadline on the handler's context")
			}
			hw.Header().Set("X-Answer", "1")
			hw.WriteHeader(201)
			_, _ = hw.Write([]byte("made"))
		})
		if w.Code != 201 || w.Body.String() != "made" || w.Header().Get("X-Answer") != "1" {
			t.Fatalf("got %d %q %v", w.Code, w.Body.String(), w.Header())
		}
	})
}

func TestInFlight(t *testing.T) {
	l := newInFlight(2, 1)
	alice := &User{Name: "alice", Groups: []string{"system:authenticated"}}
	admin := &User{Name: "admin", Groups: []string{"system:masters", "system:authenticated"}}
	get := requestInfo{isResource: true, verb: "get", resource: "pods"}
	create := requestInfo{isResource: true, verb: "create", resource: "pods"}
	watch := requestInfo{isResource: true, verb: "watch", resource: "pods"}
	exec := requestInfo{isResource: true, verb: "create", resource: "pods", sub: "exec"}

	var releases []func()
	take := func(info requestInfo, u *User) error {
		release, err := l.acquire(info, u)
		if err == nil {
			releases = append(releases, release)
		}
		return err
	}
	for i := 0; i < 2; i++ {
		if err := take(get, alice); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if err := take(create, alice); err != nil {
		t.Fatalf("a write beside full reads: %v", err)
	}
	for _, tc := range []struct {
		name string
		info requestInfo
		u    *User
		ok   bool
	}{
		{"read past the bound", get, alice, false},
		{"write past the bound", create, alice, false},
		{"system:masters past the bound", get, admin, true},
		{"watch", watch, alice, true},
		{"exec", exec, alice, true},
	} {
		err := take(tc.info, tc.u)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if code, msg := status(err); !tc.ok && (code != 429 || msg != "Too many requests, please try again later.") {
			t.Errorf("%s: got %d %q, want upstream's 429", tc.name, code, msg)
		}
	}
	releases[0]()
	if err := take(get, alice); err != nil {
		t.Fatalf("a read after one ended: %v", err)
	}
}
