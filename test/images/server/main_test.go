package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(newHandler(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	hostname, _ := os.Hostname()
	version = "v9"
	t.Setenv("SKIFF_TEST_VAR", "value")

	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string // "" to ignore
	}{
		{"GET", "/", 200, "hello from " + hostname + "\n"},
		{"GET", "/hostname", 200, hostname + "\n"},
		{"GET", "/version", 200, "v9\n"},
		{"GET", "/healthz", 200, "ok\n"},
		{"POST", "/healthz/fail", 200, ""},
		{"GET", "/healthz", 500, "failing\n"},
		{"POST", "/healthz/ok", 200, ""},
		{"GET", "/healthz", 200, "ok\n"},
		{"GET", "/cpu?ms=5", 200, ""},
		{"GET", "/cpu", 400, ""},
		{"GET", "/sleep?ms=1", 200, "slept 1 ms\n"},
		{"GET", "/env?name=SKIFF_TEST_VAR", 200, "value\n"},
		{"GET", "/exit?code=x", 400, ""},
		{"GET", "/nothing", 404, ""},
	}
	for _, tt := range tests { // in order: the healthz rows depend on each other
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantCode || (tt.wantBody != "" && string(body) != tt.wantBody) {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, body, tt.wantCode, tt.wantBody)
		}
	}
}
