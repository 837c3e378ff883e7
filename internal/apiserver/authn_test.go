package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// testCA makes a CA and a client certificate of it for user in group,
// valid until notAfter.
func testCA(t testing.TB, user, group string, notAfter time.Time) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: user, Organization: []string{group}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// X509 with Roots verifies per request: on a connection that stays open,
// a certificate whose CA is no longer trusted, or that has expired, is
// refused from the next request on; over HTTP/1.1 and HTTP/2.
func TestX509VerifiesPerRequest(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "http/1.1", true: "h2"}[h2]
		t.Run(name, func(t *testing.T) {
			pool, cert := testCA(t, "alice", "devs", time.Now().Add(2*time.Second))
			otherPool, _ := testCA(t, "x", "y", time.Now().Add(time.Hour))
			var roots atomic.Pointer[x509.CertPool]
			roots.Store(pool)
			authn := X509{Roots: roots.Load}
			var uncached atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Context().Value(clientCertCacheKey{}) == nil {
					uncached.Add(1)
				}
				u, ok, err := authn.AuthenticateRequest(r)
				switch {
				case err != nil:
					http.Error(w, err.Error(), http.StatusUnauthorized)
				case !ok:
					http.Error(w, "anonymous", http.StatusUnauthorized)
				default:
					_, _ = io.WriteString(w, u.Name)
				}
			}))
			srv.EnableHTTP2 = h2
			srv.Config.ConnContext = WithClientCertCache
			srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
			srv.StartTLS()
			defer srv.Close()
			client := srv.Client()
			tr := client.Transport.(*http.Transport)
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
			var dials atomic.Int32
			tr.TLSClientConfig.VerifyConnection = func(tls.ConnectionState) error { dials.Add(1); return nil }
			get := func() (int, string) {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if h2 && resp.ProtoMajor != 2 {
					t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
				}
				return resp.StatusCode, string(body)
			}
			for range 3 {
				if code, body := get(); code != http.StatusOK || body != "alice" {
					t.Fatalf("while trusted: %d %s", code, body)
				}
			}
			roots.Store(otherPool)
			if code, body := get(); code != http.StatusUnauthorized {
				t.Errorf("after its CA is no longer trusted: %d %s, want 401", code, body)
			}
			roots.Store(pool)
			if code, _ := get(); code != http.StatusOK {
				t.Errorf("trusted again: %d", code)
			}
			time.Sleep(time.Until(time.Now().Add(2100 * time.Millisecond)))
			if code, body := get(); code != http.StatusUnauthorized {
				t.Errorf("after it expired: %d %s, want 401", code, body)
			}
			if n := uncached.Load(); n != 0 {
				t.Errorf("%d requests without their connection's verdict cache", n)
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("%d connections, want every request on one", n)
			}
		})
	}
}

// BenchmarkX509: what the per-request check of a client certificate
// costs, with the connection's verdict kept (every request but the first
// on a connection) and without (a request on a new connection).
func BenchmarkX509(b *testing.B) {
	pool, cert := testCA(b, "alice", "devs", time.Now().Add(time.Hour))
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		b.Fatal(err)
	}
	authn := X509{Roots: func() *x509.CertPool { return pool }}
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
	for _, cached := range []bool{true, false} {
		b.Run(map[bool]string{true: "cached", false: "uncached"}[cached], func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.TLS = state
			if cached {
				req = req.WithContext(WithClientCertCache(req.Context(), nil))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := authn.AuthenticateRequest(req); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
