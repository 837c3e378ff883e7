package dns_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffdns "github.com/skiff-io/skiff/internal/dns"
	"github.com/skiff-io/skiff/test/framework"
)

// TestWithAPIServer runs the server against the real control plane: the
// kube-dns and kubernetes Services bootstrap creates resolve, and a
// headless service gets its pod through the endpointslice controller.
func TestWithAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	c := framework.StartInProcess(t, framework.WithControllers("endpointslice"))
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := skiffdns.New(skiffdns.Config{Addrs: []string{"127.0.0.1:0"}, ResolvConf: resolvConf, Client: c.NewClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	addr := s.Addrs()[0]

	name := "kube-dns.kube-system.svc.cluster.local."
	waitFor(t, addr, name, dns.TypeA, []string{name + " 5 IN A 10.43.0.10"})
	name = "kubernetes.default.svc.cluster.local."
	waitFor(t, addr, name, dns.TypeA, []string{name + " 5 IN A 10.43.0.1"})
	name = "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local."
	waitFor(t, addr, name, dns.TypeSRV, []string{name + " 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."})
	waitFor(t, addr, "ns.dns.cluster.local.", dns.TypeA, []string{"ns.dns.cluster.local. 5 IN A 10.43.0.10"})

	kdns, err := c.Client.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kdns.Labels["k8s-app"] != "kube-dns" || kdns.Labels["skiff.io/node-local"] != "true" || kdns.Spec.Selector != nil {
		t.Errorf("kube-dns Service: labels %v, selector %v", kdns.Labels, kdns.Spec.Selector)
	}

	bg := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sts"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "sts"},
			Ports: []corev1.ServicePort{{Name: "web", Port: 8080}}},
	}
	if _, err := c.Client.CoreV1().Services("default").Create(bg, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sts-0", Labels: map[string]string{"app": "sts"}},
		Spec: corev1.PodSpec{Hostname: "sts-0", Subdomain: "sts", NodeName: "n1",
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{PodIP: "10.42.0.50", PodIPs: []corev1.PodIP{{IP: "10.42.0.50"}}},
	}
	framework.CreateReadyPod(bg, t, c.Client, pod)
	name = "sts-0.sts.default.svc.cluster.local."
	waitFor(t, addr, name, dns.TypeA, []string{name + " 5 IN A 10.42.0.50"})
	name = "_web._tcp.sts.default.svc.cluster.local."
	waitFor(t, addr, name, dns.TypeSRV, []string{name + " 5 IN SRV 0 100 8080 sts-0.sts.default.svc.cluster.local."})
}

// waitFor polls until the answer section to name is want, as text.
func waitFor(t *testing.T, addr, name string, qtype uint16, want []string) {
	t.Helper()
	c := &dns.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		m := new(dns.Msg).SetQuestion(name, qtype)
		resp, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, rr := range resp.Answer {
			got = append(got, strings.ReplaceAll(rr.String(), "\t", " "))
		}
		if cmp.Equal(want, got) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s: after 15s answer %q, want %q", name, dns.TypeToString[qtype], got, want)
}
