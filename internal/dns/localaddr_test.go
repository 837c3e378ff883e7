package dns

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnsureLocalAddress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a dummy interface")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	const ifname, addr = "skiffdnstest0", "10.199.0.10"
	t.Cleanup(func() {
		if err := RemoveLocalAddress(ifname); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	for range 2 { // idempotent
		if err := EnsureLocalAddress(ifname, addr+"/32"); err != nil {
			t.Fatal(err)
		}
	}
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.String())
	}
	if !slices.Contains(got, addr+"/32") {
		t.Fatalf("addresses of %s: %v, want %s/32", ifname, got, addr)
	}
	if ifc.Flags&net.FlagUp == 0 {
		t.Errorf("%s is not up", ifname)
	}

	// The server can listen on the address and is reached there.
	s, err := New(Config{Addrs: []string{addr + ":0"}, Upstreams: []string{"127.0.0.1:1"}, Client: fake.NewClientset(namespace("ns1"))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	<-s.Ready()
	resp := query(t, s.Addrs()[0], "udp", "10-42-0-1.ns1.pod.cluster.local.", dns.TypeA)
	if len(resp.Answer) != 1 {
		t.Errorf("query on %s: %v", s.Addrs()[0], resp)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}

	if err := RemoveLocalAddress(ifname); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(ifname); err == nil {
		t.Errorf("%s still exists after RemoveLocalAddress", ifname)
	}
	if err := RemoveLocalAddress(ifname); err != nil {
		t.Errorf("removing again: %v", err)
	}
	if err := EnsureLocalAddress(ifname, "not-an-address"); err == nil {
		t.Error("EnsureLocalAddress accepted a bad address")
	}
}
