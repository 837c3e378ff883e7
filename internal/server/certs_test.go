package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-io/skiff/internal/pki"
)

// A renewal swaps the certificate a live TLS server presents: the next
// handshake gets the new one, a connection already open keeps working,
// and handshakes racing the swap all succeed. The admin hook runs, and
// runs again at the next check when it failed. The metrics follow.
func TestCertRenewerSwapsServingCertificate(t *testing.T) {
	const validity = time.Minute
	start := time.Now()
	b, err := pki.Ensure(pki.Config{Dir: t.TempDir(), LeafValidity: validity})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := newCertRenewer(b, reg, slog.New(slog.DiscardHandler))
	serving, err := r.liveCert(pki.LeafServing)
	if err != nil {
		t.Fatal(err)
	}
	hookCalls := 0
	r.onRenew(pki.LeafAdmin, func() error {
		hookCalls++
		if hookCalls == 1 {
			return errors.New("disk full")
		}
		return nil
	})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{GetCertificate: serving.GetCertificate}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	// The client's clock is the renewer's: a certificate renewed "45 s
	// from now" is not yet valid by the wall clock.
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	tlsCfg := &tls.Config{RootCAs: b.TrustPool(), ServerName: "localhost", Time: func() time.Time { return time.Unix(0, clock.Load()) }}
	// serial does a fresh handshake and returns the server's serial.
	serial := func() (string, error) {
		c, err := tls.Dial("tcp", srv.Listener.Addr().String(), tlsCfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	t.Cleanup(kept.CloseIdleConnections)
	get := func() error {
		resp, err := kept.Get("https://localhost:" + srv.URL[len("https://127.0.0.1:"):])
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	first, err := serial()
	if err != nil {
		t.Fatal(err)
	}

	if err := r.check(start.Add(10 * time.Second)); err != nil {
		t.Fatalf("check before anything is due: %v", err)
	}
	if hookCalls != 0 {
		t.Fatalf("admin hook ran with nothing renewed")
	}

	// Handshakes race the renewal.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var raceErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := serial(); err != nil {
				raceErr = err
				return
			}
		}
	}()
	// 45 s in, two thirds of the 66 s from NotBefore have passed.
	due := start.Add(45 * time.Second)
	clock.Store(due.UnixNano())
	err = r.check(due)
	stop()
	wg.Wait()
	if raceErr != nil {
		t.Errorf("a handshake during the renewal failed: %v", raceErr)
	}
	if err == nil || hookCalls != 1 {
		t.Errorf("check with a failing hook: %v, hook ran %d times", err, hookCalls)
	}
	second, err := serial()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Errorf("the server still presents serial %s after the renewal", first)
	}
	if err := get(); err != nil {
		t.Errorf("a connection opened before the renewal: %v", err)
	}

	if err := r.check(due.Add(time.Second)); err != nil || hookCalls != 2 {
		t.Errorf("the next check: %v, hook ran %d times, want the failed hook retried", err, hookCalls)
	}
	if err := r.check(due.Add(2 * time.Second)); err != nil || hookCalls != 2 {
		t.Errorf("a third check: %v, hook ran %d times, want it not run again", err, hookCalls)
	}

	if got := gather(t, reg, "skiff_certificate_renewals_total"); got[pki.LeafServing] != 1 || len(got) != 6 {
		t.Errorf("renewals = %v, want 1 of each of the 6 leaves", got)
	}
	if got := gather(t, reg, "skiff_certificate_renewal_errors_total"); got[""] != 1 {
		t.Errorf("renewal errors = %v, want 1", got)
	}
	expiry := gather(t, reg, "skiff_certificate_expiration_seconds")
	if len(expiry) != 6 {
		t.Errorf("expiration gauges: %v, want the 6 leaves", expiry)
	}
	// Renewed 45 s in for a minute: about 105 s after start.
	if s := expiry[pki.LeafServing]; s <= validity.Seconds() || s > 2*validity.Seconds() {
		t.Errorf("serving expires in %vs, want the renewed certificate's", s)
	}
}

// After a failure the renewer waits a tenth of the validity rather than
// retrying at once.
func TestCertRenewerWait(t *testing.T) {
	now := time.Now()
	b, err := pki.Ensure(pki.Config{Dir: t.TempDir(), LeafValidity: 100 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := newCertRenewer(b, nil, slog.New(slog.DiscardHandler))
	late := now.Add(99 * time.Second) // every leaf overdue
	if got := r.wait(late, nil); got != time.Second {
		t.Errorf("wait with leaves overdue = %v, want the 1s floor", got)
	}
	if got := r.wait(late, errors.New("x")); got != 10*time.Second {
		t.Errorf("wait after a failure = %v, want 10s", got)
	}
	if got := r.wait(now, nil); got <= 0 || got > 10*time.Second {
		t.Errorf("wait after start = %v, want at most the 10s check interval", got)
	}
}

// gather returns the values of the counter or gauge family name in reg,
// by their "name" label ("" without one).
func gather(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" {
					key = l.GetValue()
				}
			}
			out[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}
