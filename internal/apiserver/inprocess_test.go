package apiserver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func inProcessClient(h http.HandlerFunc) *http.Client {
	return &http.Client{Transport: InProcessTransport(h)}
}

func TestInProcessTransportRequestAndResponse(t *testing.T) {
	c := inProcessClient(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Seen", r.Method+" "+r.RequestURI+" "+r.Header.Get("Authorization")+" "+r.RemoteAddr+" "+r.Host)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("got:"))
		_, _ = w.Write(body)
	})
	req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:6443/api/v1/namespaces/a/pods?dryRun=All", strings.NewReader("payload"))
	req.Header.Set("Authorization", "Bearer t")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(body) != "got:payload" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	want := "POST /api/v1/namespaces/a/pods?dryRun=All Bearer t in-process 127.0.0.1:6443"
	if got := resp.Header.Get("X-Seen"); got != want {
		t.Errorf("handler saw %q, want %q", got, want)
	}
}

func TestInProcessTransportImplicitStatus(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"nothing written": func(http.ResponseWriter, *http.Request) {},
		"body only":       func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) },
	} {
		resp, err := inProcessClient(h).Get("https://in-process/x")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", name, resp.StatusCode)
		}
	}
}

// A watch: each flushed event reaches the client while the handler still
// runs, and closing the body ends the handler.
func TestInProcessTransportStreamsAndCancels(t *testing.T) {
	ended := make(chan error, 1)
	next := make(chan string)
	c := inProcessClient(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		for {
			select {
			case <-r.Context().Done():
				ended <- r.Context().Err()
				return
			case line := <-next:
				if _, err := w.Write([]byte(line + "\n")); err != nil {
					ended <- err
					return
				}
				if err := http.NewResponseController(w).Flush(); err != nil {
					ended <- err
					return
				}
			}
		}
	})
	resp, err := c.Get("https://in-process/watch")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Transfer-Encoding") != "" {
		t.Errorf("hop-by-hop header passed on: %v", resp.Header)
	}
	lines := bufio.NewScanner(resp.Body)
	for _, want := range []string{"one", "two"} {
		next <- want
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("read %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	resp.Body.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Error("handler ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running after the body was closed")
	}
}

func TestInProcessTransportContextCancelBeforeStatus(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := inProcessClient(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		<-release
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://in-process/slow", nil)
	if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
}

func TestInProcessTransportHandlerPanic(t *testing.T) {
	c := inProcessClient(func(http.ResponseWriter, *http.Request) { panic("boom") })
	if _, err := c.Get("https://in-process/x"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want the panic as an error", err)
	}
	c = inProcessClient(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("partial"))
		http.NewResponseController(w).Flush()
		panic("late")
	})
	resp, err := c.Get("https://in-process/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, err := io.ReadAll(resp.Body); err == nil || !strings.Contains(err.Error(), "late") || string(body) != "partial" {
		t.Errorf("body %q err %v, want the partial body then the panic", body, err)
	}
}
