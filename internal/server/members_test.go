package server

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiff-io/skiff/internal/etcd"
	"github.com/skiff-io/skiff/internal/pki"
)

// TestRemoveDeletedMembers: deleting a server's Node removes its etcd
// member; deleting a node that is no member changes nothing.
func TestRemoveDeletedMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two etcd members")
	}
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(t.TempDir(), "tls")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := func(name string, join ...string) (*etcd.Etcd, string) {
		ports := make([]int, 2)
		for i := range ports {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ports[i] = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
		}
		e, err := etcd.Start(ctx, etcd.Config{
			DataDir:  filepath.Join(t.TempDir(), "etcd"),
			CertFile: bundle.EtcdServerCertFile, KeyFile: bundle.EtcdServerKeyFile, TrustedCAFile: bundle.EtcdCAFile,
			ClientCertFile: bundle.EtcdClientCertFile, ClientKeyFile: bundle.EtcdClientKeyFile,
			Member: etcd.MemberConfig{Name: name, IP: "127.0.0.1", ClientPort: ports[0], PeerPort: ports[1], Join: join},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e, (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[0]}).String()
	}
	a, aURL := start("server-a")
	start("server-b", "https://"+aURL)

	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "server-b"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "agent-1"}})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- removeDeletedMembers(rctx, cs, a, slog.New(slog.DiscardHandler)) }()
	defer func() { stop(); <-done }()

	names := func() []string {
		ms, err := a.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		slices.Sort(out)
		return out
	}
	// Deletions count once the informer watches.
	for !slices.ContainsFunc(cs.Actions(), func(a k8stesting.Action) bool { return a.GetVerb() == "watch" }) {
		if ctx.Err() != nil {
			t.Fatal("the informer never watched nodes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "agent-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "server-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for !slices.Equal(names(), []string{"server-a"}) {
		if ctx.Err() != nil {
			t.Fatalf("members %v after server-b's Node was deleted, want server-a alone", names())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
