package sim

import (
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-io/skiff/internal/pki"
)

func TestListenKubelet(t *testing.T) {
	cert, err := pki.SelfSignedServing("skiff-sim-kubelet", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	t.Run("port in use is replaced", func(t *testing.T) {
		cfg := Defaults()
		cfg.KubeletPort = takenPort
		cfg.ClientCAFile = caFile
		k, err := New(fake.NewClientset(), cfg).listenKubelet()
		if err != nil {
			t.Fatal(err)
		}
		defer k.ln.Close()
		if k.port == 0 || int(k.port) == takenPort || int(k.port) != k.ln.Addr().(*net.TCPAddr).Port {
			t.Errorf("port %d, listening on %v; want a free port other than %d", k.port, k.ln.Addr(), takenPort)
		}
	})
	t.Run("no CA", func(t *testing.T) {
		cfg := Defaults()
		cfg.KubeletPort = 0
		if k, err := New(fake.NewClientset(), cfg).listenKubelet(); err == nil {
			k.ln.Close()
			t.Error("listenKubelet without a client CA succeeded")
		}
	})
	t.Run("bad CA file", func(t *testing.T) {
		cfg := Defaults()
		cfg.KubeletPort = 0
		cfg.ClientCAFile = filepath.Join(t.TempDir(), "missing.crt")
		if k, err := New(fake.NewClientset(), cfg).listenKubelet(); err == nil {
			k.ln.Close()
			t.Error("listenKubelet with a missing CA file succeeded")
		}
	})
}
