package server

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestNewRejectsIncompleteConfig(t *testing.T) {
	pki := newTestPKI(t)
	noCAs := pki.server.Clone()
	noCAs.ClientCAs = nil
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no TLS", Config{Addr: "127.0.0.1:0", NodeName: "n", Auth: &fakeReviews{}, Pods: &fakePods{}, Runtime: &fakeRuntime{}}},
		{"no client CAs", Config{Addr: "127.0.0.1:0", NodeName: "n", Auth: &fakeReviews{}, TLS: noCAs, Pods: &fakePods{}, Runtime: &fakeRuntime{}}},
		{"no serving cert", Config{Addr: "127.0.0.1:0", NodeName: "n", Auth: &fakeReviews{}, TLS: &tls.Config{ClientCAs: pki.server.ClientCAs}, Pods: &fakePods{}, Runtime: &fakeRuntime{}}},
		{"no pods", Config{Addr: "127.0.0.1:0", NodeName: "n", Auth: &fakeReviews{}, TLS: pki.server, Runtime: &fakeRuntime{}}},
		{"no runtime", Config{Addr: "127.0.0.1:0", NodeName: "n", Auth: &fakeReviews{}, TLS: pki.server, Pods: &fakePods{}}},
		{"no auth", Config{Addr: "127.0.0.1:0", NodeName: "n", TLS: pki.server, Pods: &fakePods{}, Runtime: &fakeRuntime{}}},
		{"no node name", Config{Addr: "127.0.0.1:0", Auth: &fakeReviews{}, TLS: pki.server, Pods: &fakePods{}, Runtime: &fakeRuntime{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(tt.cfg); err == nil {
				s.ln.Close()
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestClientCertificateVerified(t *testing.T) {
	h := startServer(t, &fakePods{}, &fakeRuntime{}, nil)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: h.pki.anonymous}}
	resp, err := anon.Get(h.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a client without credentials got %s, want 401", resp.Status)
	}
	// A client certificate from another CA is refused at the handshake.
	other := newTestPKI(t)
	foreign := h.pki.client.Clone()
	foreign.Certificates = other.client.Certificates
	resp, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: foreign}}).Get(h.base + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a client with a foreign certificate got %s", resp.Status)
	}
	if code, body := h.get(t, "/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("GET /healthz with the client certificate = %d %q, want 200 ok", code, body)
	}
}

func TestPodsAndNotFound(t *testing.T) {
	pods := &fakePods{pods: []*v1.Pod{testPod("default", "web", "u1", "nginx"), testPod("kube-system", "dns", "u2", "coredns")}}
	h := startServer(t, pods, &fakeRuntime{}, nil)

	code, body := h.get(t, "/pods")
	if code != http.StatusOK {
		t.Fatalf("GET /pods = %d %s", code, body)
	}
	var list v1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list.Items {
		got = append(got, p.Namespace+"/"+p.Name+"/"+string(p.UID))
	}
	if diff := cmp.Diff([]string{"default/web/u1", "kube-system/dns/u2"}, got); diff != "" || list.Kind != "PodList" || list.APIVersion != "v1" {
		t.Errorf("GET /pods: kind %q apiVersion %q, pods (-want +got):\n%s", list.Kind, list.APIVersion, diff)
	}

	for _, path := range []string{"/nope", "/containerLogs/default", "/stats"} {
		code, body := h.get(t, path)
		st := decodeStatus(t, body)
		if code != http.StatusNotFound || st.Code != http.StatusNotFound || st.Reason != "NotFound" || st.Kind != "Status" {
			t.Errorf("GET %s = %d %+v, want a 404 NotFound Status", path, code, st)
		}
	}
}
