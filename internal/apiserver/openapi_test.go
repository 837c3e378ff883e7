package apiserver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-io/skiff/internal/storage"
)

func newOpenAPITestServer(t testing.TB) *Server {
	t.Helper()
	s, err := New(Config{
		Resources:  allResources(),
		NewStorage: func(storage.Config) (storage.Interface, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openAPIGet(t testing.TB, h http.HandlerFunc, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h(rec, req)
	return rec.Result()
}

func respBody(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestOpenAPIV3Serving(t *testing.T) {
	s := newOpenAPITestServer(t)

	resp := openAPIGet(t, s.serveOpenAPIV3, "/openapi/v3", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("index: status %d", resp.StatusCode)
	}
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(respBody(t, resp), &index); err != nil {
		t.Fatal(err)
	}
	for _, gv := range []string{"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v2", "apis/rbac.authorization.k8s.io/v1"} {
		if !strings.HasPrefix(index.Paths[gv].ServerRelativeURL, "/openapi/v3/"+gv+"?hash=") {
			t.Errorf("index entry %s = %q", gv, index.Paths[gv].ServerRelativeURL)
		}
	}
	url := index.Paths["apis/apps/v1"].ServerRelativeURL

	resp = openAPIGet(t, s.serveOpenAPIV3, url, map[string]string{"Accept": "application/json"})
	plain := respBody(t, resp)
	etag := resp.Header.Get("Etag")
	hash := url[strings.Index(url, "hash=")+len("hash="):]
	if resp.StatusCode != http.StatusOK || etag != `"`+hash+`"` {
		t.Fatalf("document: status %d etag %q, want 200 and the hash %q", resp.StatusCode, etag, hash)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, immutable" {
		t.Errorf("Cache-Control with ?hash = %q", cc)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.PodSpec", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.api.autoscaling.v1.Scale"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("apps/v1 document lacks schema %s", name)
		}
	}

	tests := []struct {
		name     string
		target   string
		header   map[string]string
		wantCode int
		wantGzip bool
	}{
		{"If-None-Match", "/openapi/v3/apis/apps/v1", map[string]string{"If-None-Match": etag}, http.StatusNotModified, false},
		{"weak If-None-Match in a list", "/openapi/v3/apis/apps/v1", map[string]string{"If-None-Match": `"x", W/` + etag}, http.StatusNotModified, false},
		{"stale If-None-Match", "/openapi/v3/apis/apps/v1", map[string]string{"If-None-Match": `"0"`}, http.StatusOK, false},
		{"gzip", "/openapi/v3/apis/apps/v1", map[string]string{"Accept-Encoding": "gzip, deflate"}, http.StatusOK, true},
		{"gzip refused", "/openapi/v3/apis/apps/v1", map[string]string{"Accept-Encoding": "gzip;q=0"}, http.StatusOK, false},
		{"stale hash redirects", "/openapi/v3/apis/apps/v1?hash=00", nil, http.StatusMovedPermanently, false},
		{"unknown group version", "/openapi/v3/apis/nope/v1", nil, http.StatusNotFound, false},
		{"unacceptable type", "/openapi/v3/apis/apps/v1", map[string]string{"Accept": "text/html"}, http.StatusNotAcceptable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := openAPIGet(t, s.serveOpenAPIV3, tt.target, tt.header)
			body := respBody(t, resp)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode == http.StatusMovedPermanently && resp.Header.Get("Location") != url {
				t.Errorf("redirect to %q, want %q", resp.Header.Get("Location"), url)
			}
			if tt.wantCode != http.StatusOK {
				return
			}
			if gz := resp.Header.Get("Content-Encoding") == "gzip"; gz != tt.wantGzip {
				t.Fatalf("Content-Encoding %q, want gzip %v", resp.Header.Get("Content-Encoding"), tt.wantGzip)
			}
			if tt.wantGzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, plain) {
				t.Errorf("body differs from the plain document (%d bytes, want %d)", len(body), len(plain))
			}
		})
	}
}

func TestOpenAPIV2Serving(t *testing.T) {
	s := newOpenAPITestServer(t)
	resp := openAPIGet(t, s.serveOpenAPIV2, "/openapi/v2", map[string]string{"Accept": "application/json"})
	raw := respBody(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Etag") == "" {
		t.Fatalf("v2 json: status %d etag %q", resp.StatusCode, resp.Header.Get("Etag"))
	}
	var doc struct {
		Swagger     string                     `json:"swagger"`
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" || doc.Definitions["io.k8s.api.core.v1.Pod"] == nil || doc.Definitions["io.k8s.api.apps.v1.Deployment"] == nil {
		t.Fatalf("v2 document: swagger %q, %d definitions", doc.Swagger, len(doc.Definitions))
	}

	// What client-go's discovery asks for: gnostic's protobuf.
	resp = openAPIGet(t, s.serveOpenAPIV2, "/openapi/v2", map[string]string{"Accept": mimeOpenAPIV2Proto})
	pb := respBody(t, resp)
	// Answered with the media type spelled so that it parses, as
	// upstream answers: client-go reads it with mime.ParseMediaType.
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Fatalf("v2 protobuf: status %d content type %q", resp.StatusCode, ct)
	}
	if _, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil {
		t.Fatalf("v2 protobuf content type: %v", err)
	}
	var gdoc openapiv2.Document
	if err := proto.Unmarshal(pb, &gdoc); err != nil {
		t.Fatalf("v2 protobuf does not decode: %v", err)
	}
	found := false
	for _, def := range gdoc.GetDefinitions().GetAdditionalProperties() {
		if def.GetName() == "io.k8s.api.core.v1.PodSpec" {
			found = true
		}
	}
	if !found {
		t.Error("v2 protobuf lacks io.k8s.api.core.v1.PodSpec")
	}
	resp = openAPIGet(t, s.serveOpenAPIV2, "/openapi/v2", map[string]string{"If-None-Match": resp.Header.Get("Etag"), "Accept": mimeOpenAPIV2Proto})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("v2 If-None-Match: status %d", resp.StatusCode)
	}
}

func TestOpenAPIFormat(t *testing.T) {
	tests := []struct{ accept, want string }{
		{"", "json"},
		{"application/json", "json"},
		{"application/json, */*", "json"},
		{mimeOpenAPIV2Proto, "protobuf"},
		{"application/com.github.proto-openapi.spec.v2.v1.0+protobuf", "protobuf"},
		{"text/html, application/json;q=0.9", "json"},
		{"text/html", ""},
	}
	for _, tt := range tests {
		if got := openAPIFormat(tt.accept, mimeOpenAPIV2Proto); got != tt.want {
			t.Errorf("openAPIFormat(%q) = %q, want %q", tt.accept, got, tt.want)
		}
	}
}

// BenchmarkOpenAPIV3Cold builds every v3 document and the index from
// nothing, as the first request after a start does.
func BenchmarkOpenAPIV3Cold(b *testing.B) {
	s := newOpenAPITestServer(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := &openAPIDoc{resources: s.openAPIResources()}
		d.buildV3()
		if d.v3Err != nil {
			b.Fatal(d.v3Err)
		}
	}
}

// BenchmarkOpenAPIV2Cold builds the v2 document (JSON) from nothing.
func BenchmarkOpenAPIV2Cold(b *testing.B) {
	s := newOpenAPITestServer(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := &openAPIDoc{resources: s.openAPIResources()}
		d.buildV2()
		if d.v2Err != nil {
			b.Fatal(d.v2Err)
		}
	}
}

// BenchmarkOpenAPIV3Cached serves the cached api/v1 document, plain and
// gzipped.
func BenchmarkOpenAPIV3Cached(b *testing.B) {
	s := newOpenAPITestServer(b)
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/openapi/v3/api/v1", nil)
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Accept-Encoding", enc)
			s.serveOpenAPIV3(httptest.NewRecorder(), req) // build
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec := httptest.NewRecorder()
				s.serveOpenAPIV3(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}
