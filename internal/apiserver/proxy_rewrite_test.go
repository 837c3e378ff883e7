package apiserver

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const proxyPrefix = "/api/v1/namespaces/ns/pods/http:web:1080/proxy"

// through sends a GET for path to a backend answering with h, through the
// rewriter, and returns the answer as the client gets it.
func through(t *testing.T, h http.HandlerFunc, path string) (*http.Response, string) {
	t.Helper()
	backend := httptest.NewServer(h)
	t.Cleanup(backend.Close)
	rt := &linkRewriter{prefix: proxyPrefix, clientHost: "api.example:6443", next: http.DefaultTransport}
	req, _ := http.NewRequest(http.MethodGet, backend.URL+path, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, "read error: " + err.Error()
	}
	return resp, string(body)
}

func TestLinkRewriter(t *testing.T) {
	var backendHost string
	page := func() string {
		return `<html><body><a href="/rewriteme">test</a> <img src="pic.png"> <a href="http://other.example/x">o</a>` +
			`<a href="http://` + backendHost + `/y?q=1">self</a><form action="/post"></form>` +
			`<a href="` + proxyPrefix + `/already">a</a><p>/not-a-link</p></body></html>`
	}
	want := `<html><body><a href="` + proxyPrefix + `/rewriteme">test</a> <img src="pic.png"> <a href="http://other.example/x">o</a>` +
		`<a href="` + proxyPrefix + `/y?q=1">self</a><form action="` + proxyPrefix + `/post"></form>` +
		`<a href="` + proxyPrefix + `/already">a</a><p>/not-a-link</p></body></html>`
	serve := func(gz bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			backendHost = r.Host
			if got := r.Header.Get("X-Forwarded-Uri"); got != proxyPrefix+"/index.html" {
				t.Errorf("X-Forwarded-Uri %q", got)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Access-Control-Allow-Origin", "*")
			if !gz {
				io.WriteString(w, page())
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, page())
			zw.Close()
		}
	}
	for _, gz := range []bool{false, true} {
		resp, body := through(t, serve(gz), "/index.html")
		if body != want {
			t.Errorf("gzip %v: page\n%s\nwant\n%s", gz, body, want)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("gzip %v: headers %v: want no CORS header and a plain body", gz, resp.Header)
		}
	}

	// A redirect to the backend's own path follows through the proxy;
	// one to another host is left alone.
	resp, _ := through(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login?next=%2F", http.StatusFound) }, "/")
	if got := resp.Header.Get("Location"); got != proxyPrefix+"/login?next=%2F" {
		t.Errorf("Location %q, want it under the proxy", got)
	}
	resp, _ = through(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://idp.example/auth", http.StatusFound)
	}, "/")
	if got := resp.Header.Get("Location"); got != "https://idp.example/auth" {
		t.Errorf("Location %q, want another host's URL kept", got)
	}

	// Other content passes untouched.
	_, body := through(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"href":"/x"}`)
	}, "/")
	if body != `{"href":"/x"}` {
		t.Errorf("json body %q changed", body)
	}

	// A tag larger than the bound ends the copy; it is never held whole.
	_, body = through(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<a href="`+strings.Repeat("x", 3*maxHTMLToken)+`">`)
	}, "/")
	if !strings.HasPrefix(body, "read error") {
		t.Errorf("a %d-byte tag: read %d bytes without an error", 3*maxHTMLToken, len(body))
	}
}

func TestRedirectToProxyRoot(t *testing.T) {
	for _, tc := range []struct {
		method, target, want string
	}{
		{"GET", proxyPrefix + "?method=GET", proxyPrefix + "/?method=GET"},
		{"HEAD", proxyPrefix, proxyPrefix + "/"},
		{"POST", proxyPrefix, ""},
		{"GET", proxyPrefix + "/", ""},
		{"GET", proxyPrefix + "/x/proxy2", ""},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, tc.target, nil)
		did := redirectToProxyRoot(w, r)
		if did != (tc.want != "") || (did && (w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != tc.want)) {
			t.Errorf("%s %s: redirected %v (%d %q), want %q", tc.method, tc.target, did, w.Code, w.Header().Get("Location"), tc.want)
		}
	}
}
