package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/etcd"
	"github.com/skiff-io/skiff/test/framework"
)

// haLeaseFlags shorten the scheduler's and controllers' Leases (upstream's
// 15 s) so that a dead holder's components are taken over in seconds.
var haLeaseFlags = []string{"--leader-elect-lease-duration=8s", "--leader-elect-renew-deadline=6s", "--leader-elect-retry-period=1s"}

// TestHA runs three servers sharing an embedded etcd cluster and one
// agent, each in a network namespace of its own, and kills the server
// that leads etcd and holds the controllers' Lease while a writer creates
// ConfigMaps through the kubernetes Service's ClusterIP (which the
// agent's proxy balances over the live servers).
func TestHA(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	if why := framework.CanRunNetworkNamespaces(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	network := framework.NewNetwork(t, "skha0", "10.199.72.0/24")
	nns := map[string]*framework.NetNode{}
	for _, name := range []string{"skha-s1", "skha-s2", "skha-s3", "skha-s4", "skha-a1"} {
		nns[name] = network.AddNode(t, name)
	}
	servers := map[string]*framework.Cluster{}
	servers["skha-s1"] = framework.StartServerIn(t, skiffBin, nns["skha-s1"], append([]string{"--cluster-init"}, haLeaseFlags...)...)
	serverJoin := servers["skha-s1"].ServerJoinString(t)
	join := func(name, via string) {
		t.Helper()
		servers[name] = framework.StartServerIn(t, skiffBin, nns[name], append([]string{"--server", servers[via].URL(), "--token", serverJoin}, haLeaseFlags...)...)
	}
	join("skha-s2", "skha-s1")
	join("skha-s3", "skha-s2")

	t.Run("three servers, three etcd voters, one API", func(t *testing.T) {
		for name, s := range servers {
			if got := voterNames(t, s); !slices.Equal(got, []string{"skha-s1", "skha-s2", "skha-s3"}) {
				t.Fatalf("etcd members as %s sees them: %v, want the three servers as voters", name, got)
			}
		}
		k1, k3 := kubectl{t: t, c: servers["skha-s1"]}, kubectl{t: t, c: servers["skha-s3"]}
		k1.ok("create", "configmap", "ha-probe", "--from-literal=k=v")
		mustContain(t, "a ConfigMap written through s1, read through s3", k3.ok("get", "configmap", "ha-probe", "-o", "jsonpath={.data.k}"), "v")
		// A joining server's wrong secret and wrong flags are refused,
		// each with a message that says which.
		last := "a"
		if strings.HasSuffix(serverJoin, last) {
			last = "b"
		}
		bad := serverJoin[:len(serverJoin)-1] + last
		out, err := nns["skha-s4"].Command(skiffBin, "server", "--disable-agent", "--data-dir", t.TempDir(), "--node-name", "skha-s4",
			"--bind-address", nns["skha-s4"].IP, "--server", servers["skha-s1"].URL(), "--token", bad).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refused the secret") {
			t.Fatalf("joining with a wrong secret: %v\n%s", err, tail(string(out), 5))
		}
		out, err = nns["skha-s4"].Command(skiffBin, "server", "--disable-agent", "--data-dir", t.TempDir(), "--node-name", "skha-s4",
			"--bind-address", nns["skha-s4"].IP, "--server", servers["skha-s1"].URL(), "--token", serverJoin, "--service-cidr", "10.44.0.0/16").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--service-cidr") {
			t.Fatalf("joining with another --service-cidr: %v\n%s", err, tail(string(out), 5))
		}
	})

	// The agent joins through s1; it fails over when s1 dies.
	agent := framework.StartAgentIn(t, skiffBin, servers["skha-s1"], nns["skha-a1"], newJoinString(t, servers["skha-s1"]), images)
	k := kubectl{t: t, c: servers["skha-s2"]}
	k.okIn(haDeployment, "apply", "-f", "-")
	k.waitFor(t, "2 pods of ha-web Ready", 120*time.Second, func() (bool, string) {
		return readyPodsIn(k, "default", "app=ha-web") == 2, k.ok("get", "pods", "-o", "wide")
	})
	containerIDs := k.ok("get", "pods", "-l", "app=ha-web", "-o", `jsonpath={range .items[*]}{.status.containerStatuses[0].containerID} {end}`)
	readySince := k.jsonpath("node/skha-a1", `{.status.conditions[?(@.type=="Ready")].lastTransitionTime}`)

	// The victim holds the controllers' Lease; it is made etcd's leader.
	holder, _ := k.run("", "get", "lease", "kube-controller-manager", "-n", "kube-system", "-o", "jsonpath={.spec.holderIdentity}")
	holder = strings.TrimSpace(holder)
	victim, _, _ := strings.Cut(holder, "_")
	if servers[victim] == nil {
		t.Fatalf("kube-controller-manager Lease held by %q: not one of the servers", holder)
	}
	moveEtcdLeader(t, servers["skha-s1"], victim)
	var survivor *framework.Cluster
	for name, s := range servers {
		if name != victim {
			survivor = s
			break
		}
	}
	k = kubectl{t: t, c: survivor}

	writer := startWriter(t, servers["skha-s1"], nns["skha-a1"])
	time.Sleep(2 * time.Second) // writes before the kill
	t.Logf("killing %s: etcd leader, holder of the controllers' Lease", victim)
	servers[victim].Kill9(t)
	killed := time.Now()

	apiBack := 5 * time.Second // how long after the kill a survivor took a write
	t.Run("the API answers through the others within 5 s", func(t *testing.T) {
		cs := survivor.Client
		var took time.Duration
		defer func() { apiBack = took }()
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("after-kill-%d", i)}}, metav1.CreateOptions{})
			cancel()
			if err == nil {
				took = time.Since(killed)
				break
			}
			if time.Since(killed) > 5*time.Second {
				t.Fatalf("no write through a surviving server within 5 s of the kill: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("first write through a surviving server %v after the kill", took.Round(time.Millisecond))
	})

	t.Run("the controllers' Lease is taken over within its duration", func(t *testing.T) {
		// A candidate counts the lease duration (8 s) from when it saw
		// the holder's last renewal, which it polls every retry period
		// (1 s, jittered up to 2.2 s), and takes the Lease at its next
		// poll after that, once the API takes writes again (etcd elects
		// a new leader first): two jittered retry periods and the API's
		// own failover on top of the lease duration.
		bound := 8*time.Second + 2*2200*time.Millisecond + apiBack
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			lease, err := survivor.Client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
			cancel()
			if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != holder {
				t.Logf("kube-controller-manager Lease taken over by %s %v after the kill", *lease.Spec.HolderIdentity, time.Since(killed).Round(time.Millisecond))
				return
			}
			if time.Since(killed) > bound {
				t.Fatalf("kube-controller-manager Lease still held by the killed %s %v after the kill (bound %v)", holder, time.Since(killed).Round(time.Millisecond), bound)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a Deployment scaled after the kill reaches its replicas within 20 s", func(t *testing.T) {
		k.t = t
		scaled := time.Now()
		k.ok("scale", "deployment", "ha-web", "--replicas=3")
		k.waitFor(t, "3 pods of ha-web Ready", 20*time.Second, func() (bool, string) {
			return readyPodsIn(k, "default", "app=ha-web") == 3, k.ok("get", "pods", "-o", "wide")
		})
		t.Logf("scaled to 3 Ready replicas in %v (kill to scale: %v)", time.Since(scaled).Round(time.Millisecond), scaled.Sub(killed).Round(time.Millisecond))
	})

	time.Sleep(2 * time.Second) // writes after the failover
	acked, firstAfter := writer.stop(killed)
	t.Run("every acknowledged write is there", func(t *testing.T) {
		if firstAfter <= 0 {
			t.Fatalf("the writer through the ClusterIP never succeeded after the kill (%d writes acknowledged before)", len(acked))
		}
		t.Logf("writer: %d writes acknowledged; first after the kill %v after it", len(acked), firstAfter.Round(time.Millisecond))
		list, err := survivor.Client.CoreV1().ConfigMaps(haWriterNamespace).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, cm := range list.Items {
			have[cm.Name] = true
		}
		for _, name := range acked {
			if !have[name] {
				t.Errorf("acknowledged write %s is missing", name)
			}
		}
	})

	t.Run("the agent kept its pods and stayed Ready", func(t *testing.T) {
		k.t = t
		now := k.ok("get", "pods", "-l", "app=ha-web", "-o", `jsonpath={range .items[*]}{.status.containerStatuses[0].containerID} {end}`)
		for _, id := range strings.Fields(containerIDs) {
			if !strings.Contains(now, id) {
				t.Errorf("container %s of the agent's pods is gone: the pods were restarted (now %s)", id, now)
			}
		}
		if got := k.jsonpath("node/skha-a1", `{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastTransitionTime}`); got != "True "+readySince {
			t.Errorf("node skha-a1 Ready condition: %q, want True since %s (never NotReady)\nagent log:\n%s", got, readySince, tail(agent.Log(), 30))
		}
	})

	t.Run("the killed server restarts and rejoins", func(t *testing.T) {
		servers[victim].Restart(t)
		if got := voterNames(t, servers[victim]); !slices.Equal(got, []string{"skha-s1", "skha-s2", "skha-s3"}) {
			t.Fatalf("etcd members after %s restarted: %v", victim, got)
		}
	})

	t.Run("a server removed for good, a new one joins under its name", func(t *testing.T) {
		gone := "skha-s3"
		if err := servers[gone].Stop(); err != nil {
			t.Fatal(err)
		}
		via := servers["skha-s1"]
		if out, err := exec.Command(skiffBin, "etcd-member", "remove", gone, "--kubeconfig", via.Kubeconfig).CombinedOutput(); err != nil {
			t.Fatalf("skiff etcd-member remove %s: %v\n%s", gone, err, out)
		}
		if got := voterNames(t, via); !slices.Equal(got, []string{"skha-s1", "skha-s2"}) {
			t.Fatalf("etcd members after %s was removed: %v", gone, got)
		}
		// Its replacement: a fresh data dir, the same name and address.
		join(gone, "skha-s1")
		if got := voterNames(t, servers[gone]); !slices.Equal(got, []string{"skha-s1", "skha-s2", "skha-s3"}) {
			t.Fatalf("etcd members after %s was replaced: %v", gone, got)
		}
	})

	for _, name := range slices.Sorted(maps.Keys(servers)) {
		t.Logf("server %s: peak RSS %d MiB", name, servers[name].PeakRSS(t)>>20)
	}

	t.Run("a snapshot taken while writing restores to a cluster with every write acknowledged before it", func(t *testing.T) {
		s1 := servers["skha-s1"]
		writer := startWriterIn(t, s1, nns["skha-a1"], "ha-snapshot")
		time.Sleep(2 * time.Second)
		began := time.Now()
		out, err := exec.Command(skiffBin, "etcd-snapshot", "save", "--data-dir", s1.DataDir).CombinedOutput()
		if err != nil {
			t.Fatalf("skiff etcd-snapshot save: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
		acked, _ := writer.stop(time.Time{})
		var before []string
		for i, at := range writer.ackAt {
			if at.Before(began) {
				before = append(before, acked[i])
			}
		}
		snapshot := strings.TrimSpace(string(out))
		snapshot = snapshot[strings.LastIndex(snapshot, " ")+1:]
		t.Logf("snapshot %s taken with %d writes acknowledged before it, %d in all", snapshot, len(before), len(acked))

		for _, s := range servers {
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := s1.RunOnce("--cluster-reset", "--cluster-reset-restore-path", snapshot); err != nil {
			t.Fatalf("skiff server --cluster-reset --cluster-reset-restore-path: %v\n%s", err, tail(string(out), 10))
		}
		s1.Restart(t)
		if got := voterNames(t, s1); !slices.Equal(got, []string{"skha-s1"}) {
			t.Fatalf("etcd members after the reset: %v, want skha-s1 alone", got)
		}
		list, err := s1.Client.CoreV1().ConfigMaps("ha-snapshot").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, cm := range list.Items {
			have[cm.Name] = true
		}
		for _, name := range before {
			if !have[name] {
				t.Errorf("write %s, acknowledged before the snapshot, is missing after the restore", name)
			}
		}
	})
}

const haWriterNamespace = "ha-writes"

const haDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ha-web
spec:
  replicas: 2
  selector:
    matchLabels: {app: ha-web}
  template:
    metadata:
      labels: {app: ha-web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: skiff.io/test/server:v1
        imagePullPolicy: Never
`

// voterNames asks s for the etcd members and returns the names of the
// voters, sorted; it fails on a learner.
func voterNames(t *testing.T, s *framework.Cluster) []string {
	t.Helper()
	var names []string
	for _, m := range etcdMembers(t, s) {
		if m.IsLearner {
			t.Fatalf("etcd member %s is a learner", m.Name)
		}
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// etcdMembers asks s for the etcd members (skiff etcd-member list).
func etcdMembers(t *testing.T, s *framework.Cluster) []etcd.Member {
	t.Helper()
	var members []etcd.Member
	body, err := s.Client.Discovery().RESTClient().Get().AbsPath("/v1-skiff/etcd/members").DoRaw(context.Background())
	if err == nil {
		err = json.Unmarshal(body, &members)
	}
	if err != nil {
		t.Fatalf("etcd members: %v", err)
	}
	return members
}

// moveEtcdLeader makes the member called to etcd's leader, talking to
// etcd with a server's client certificate.
func moveEtcdLeader(t *testing.T, via *framework.Cluster, to string) {
	t.Helper()
	members := etcdMembers(t, via)
	var leader, target *etcd.Member
	for i := range members {
		if members[i].Leader {
			leader = &members[i]
		}
		if members[i].Name == to {
			target = &members[i]
		}
	}
	if leader == nil || target == nil {
		t.Fatalf("etcd members %+v: no leader or no %s", members, to)
	}
	if leader.ID == target.ID {
		return
	}
	tlsDir := filepath.Join(via.DataDir, "tls", "etcd")
	pair, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "client.crt"), filepath.Join(tlsDir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("etcd CA: no PEM certificate")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: leader.ClientURLs, DialTimeout: 5 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.MoveLeader(ctx, target.ID); err != nil {
		t.Fatalf("moving etcd's leadership from %s to %s: %v", leader.Name, to, err)
	}
}

// haWriter creates ConfigMaps, one every 20 ms, through the kubernetes
// Service's ClusterIP as seen from inside a node.
type haWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	acked  []string
	ackAt  []time.Time
}

func startWriter(t *testing.T, admin *framework.Cluster, from *framework.NetNode) *haWriter {
	return startWriterIn(t, admin, from, haWriterNamespace)
}

// startWriterIn starts a writer of ConfigMaps in namespace ns, which it
// creates.
func startWriterIn(t *testing.T, admin *framework.Cluster, from *framework.NetNode, ns string) *haWriter {
	t.Helper()
	cfg := rest.CopyConfig(admin.Config)
	cfg.Host = "https://10.43.0.1:443"
	cfg.Dial = from.DialContext
	cfg.TLSClientConfig.ServerName = "kubernetes"
	cfg.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &haWriter{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ctx.Err() == nil; i++ {
			name := fmt.Sprintf("w-%05d", i)
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if err == nil {
				w.mu.Lock()
				w.acked, w.ackAt = append(w.acked, name), append(w.ackAt, time.Now())
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// stop ends the writer and returns the writes acknowledged, and how long
// after killed the first write after it was acknowledged (0: none).
func (w *haWriter) stop(killed time.Time) ([]string, time.Duration) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.ackAt {
		if at.After(killed) {
			return w.acked, at.Sub(killed)
		}
	}
	return w.acked, 0
}
