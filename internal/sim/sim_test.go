package sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/sim"
	"github.com/skiff-io/skiff/test/framework"
)

// startSim starts s and stops it (waiting for Start to return) in
// t.Cleanup; the returned func stops it earlier.
func startSim(t *testing.T, s *sim.Sim) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sim.Start: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("sim.Start did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func unlimitedClient(t *testing.T, c *framework.Cluster) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	return kubernetes.NewForConfigOrDie(cfg)
}

func poll(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func newPod(name, node, image string, policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "main", Image: image}},
		},
	}
}

func TestSimAgainstServer(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := unlimitedClient(t, cluster)
	ctx := context.Background()

	cfg := sim.Defaults()
	cfg.Nodes = 50
	cfg.ZoneCount = 3
	cfg.Labels = map[string]string{"pool": "sim"}
	cfg.StartDelay = 100 * time.Millisecond
	cfg.RunTime = 300 * time.Millisecond
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.KillNodes = []string{"sim-node-49"}
	s := sim.New(client, cfg)
	stop := startSim(t, s)

	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.WaitReady(waitCtx); err != nil {
		t.Fatal(err)
	}

	t.Run("nodes registered and ready", func(t *testing.T) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "pool=sim"})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != 50 {
			t.Fatalf("%d nodes, want 50", len(nodes.Items))
		}
		zones := map[string]int{}
		for i := range nodes.Items {
			n := &nodes.Items[i]
			if !nodeReady(n) {
				t.Errorf("node %s not Ready: %v", n.Name, n.Status.Conditions)
			}
			if n.Status.NodeInfo.KubeletVersion != sim.KubeletVersion || len(n.Status.Addresses) == 0 || n.Status.Allocatable.Pods().Value() != 110 {
				t.Errorf("node %s status incomplete: %+v", n.Name, n.Status)
			}
			zones[n.Labels[corev1.LabelTopologyZone]]++
		}
		if len(zones) != 3 || zones["zone-0"] != 17 {
			t.Errorf("zones = %v", zones)
		}
		poll(t, "49 leases (the killed node has none)", 10*time.Second, func(ctx context.Context) (bool, error) {
			leases, err := client.CoordinationV1().Leases(sim.LeaseNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return len(leases.Items) == 49, nil
		})
		l, err := client.CoordinationV1().Leases(sim.LeaseNamespace).Get(ctx, "sim-node-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "sim-node-0" || l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 40 || len(l.OwnerReferences) != 1 {
			t.Errorf("lease = %+v", l)
		}
		if _, err := client.CoordinationV1().Leases(sim.LeaseNamespace).Get(ctx, "sim-node-49", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("killed node's lease: err = %v, want NotFound", err)
		}
	})

	pods := client.CoreV1().Pods("default")
	getPod := func(name string) *corev1.Pod {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod %s: %v", name, err)
		}
		return p
	}
	for _, p := range []*corev1.Pod{
		newPod("web", "sim-node-1", "nginx", corev1.RestartPolicyAlways),
		newPod("job", "sim-node-2", "busybox", corev1.RestartPolicyNever),
		newPod("crashloop", "sim-node-3", "example.com/fail:1", corev1.RestartPolicyAlways),
		newPod("failjob", "sim-node-4", "fail", corev1.RestartPolicyNever),
		newPod("dead", "sim-node-49", "nginx", corev1.RestartPolicyAlways),
	} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
	}

	t.Run("pod runs and is ready", func(t *testing.T) {
		poll(t, "web Running and Ready", 10*time.Second, func(context.Context) (bool, error) {
			p := getPod("web")
			return p.Status.Phase == corev1.PodRunning && podCondition(p, corev1.PodReady) == corev1.ConditionTrue, nil
		})
		p := getPod("web")
		if p.Status.HostIP != "127.0.0.3" || p.Status.PodIP == "" || p.Status.StartTime == nil {
			t.Errorf("status = %+v", p.Status)
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || !cs[0].Ready || cs[0].State.Running == nil {
			t.Errorf("containerStatuses = %+v", cs)
		}
	})

	t.Run("never pod succeeds", func(t *testing.T) {
		poll(t, "job Succeeded", 10*time.Second, func(context.Context) (bool, error) {
			return getPod("job").Status.Phase == corev1.PodSucceeded, nil
		})
		cs := getPod("job").Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 0 {
			t.Errorf("containerStatuses = %+v", cs)
		}
	})

	t.Run("fail image never ready, crash-loops", func(t *testing.T) {
		poll(t, "crashloop restarted", 10*time.Second, func(context.Context) (bool, error) {
			p := getPod("crashloop")
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1, nil
		})
		p := getPod("crashloop")
		if p.Status.Phase != corev1.PodRunning || podCondition(p, corev1.PodReady) != corev1.ConditionFalse {
			t.Errorf("phase %s, Ready %s; want Running, False", p.Status.Phase, podCondition(p, corev1.PodReady))
		}
		if last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
			t.Errorf("lastState = %+v", p.Status.ContainerStatuses[0].LastTerminationState)
		}
	})

	t.Run("never fail pod fails", func(t *testing.T) {
		poll(t, "failjob Failed", 10*time.Second, func(context.Context) (bool, error) {
			return getPod("failjob").Status.Phase == corev1.PodFailed, nil
		})
		cs := getPod("failjob").Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 1 || cs[0].State.Terminated.Reason != "Error" {
			t.Errorf("containerStatuses = %+v", cs)
		}
	})

	t.Run("deleted pod disappears", func(t *testing.T) {
		if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "web gone", 10*time.Second, func(ctx context.Context) (bool, error) {
			_, err := pods.Get(ctx, "web", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})

	t.Run("ready restored", func(t *testing.T) {
		n, err := client.CoreV1().Nodes().Get(ctx, "sim-node-5", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				n.Status.Conditions[i].Status = corev1.ConditionUnknown
				n.Status.Conditions[i].Reason = "NodeStatusUnknown"
			}
		}
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute})
		if n, err = client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				n.Status.Conditions[i].Status = corev1.ConditionUnknown
				n.Status.Conditions[i].Reason = "NodeStatusUnknown"
			}
		}
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "sim-node-5 Ready again", 10*time.Second, func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, "sim-node-5", metav1.GetOptions{})
			return err == nil && nodeReady(n), err
		})
		n, err = client.CoreV1().Nodes().Get(ctx, "sim-node-5", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Spec.Taints) != 1 {
			t.Errorf("taints = %v; the simulator must leave the controller's taint", n.Spec.Taints)
		}
	})

	t.Run("killed node stops", func(t *testing.T) {
		renewed := func(name string) time.Time {
			l, err := client.CoordinationV1().Leases(sim.LeaseNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil || l.Spec.RenewTime == nil {
				t.Fatalf("lease %s: %v", name, err)
			}
			return l.Spec.RenewTime.Time
		}
		if !s.Kill("sim-node-6") {
			t.Fatal("Kill(sim-node-6) = false")
		}
		if s.Kill("nonexistent") {
			t.Error("Kill(nonexistent) = true")
		}
		killedAt := renewed("sim-node-6")
		// A live node renewing twice more proves heartbeats went on for
		// more than an interval.
		last := renewed("sim-node-7")
		for range 2 {
			poll(t, "sim-node-7 renewing", 10*time.Second, func(context.Context) (bool, error) {
				r := renewed("sim-node-7")
				if r.After(last) {
					last = r
					return true, nil
				}
				return false, nil
			})
		}
		if got := renewed("sim-node-6"); !got.Equal(killedAt) {
			t.Errorf("killed node's lease renewed: %v -> %v", killedAt, got)
		}
		if p := getPod("dead"); p.Status.Phase != corev1.PodPending {
			t.Errorf("pod on a killed node: phase %s, want Pending", p.Status.Phase)
		}
	})

	t.Run("restart takes nodes over", func(t *testing.T) {
		stop()
		s2 := sim.New(client, cfg)
		startSim(t, s2)
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s2.WaitReady(waitCtx); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(ctx, "job", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "job gone after restart", 10*time.Second, func(ctx context.Context) (bool, error) {
			_, err := pods.Get(ctx, "job", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})
}

// TestRegisterThousandNodes reports how long 1,000 nodes take to be
// registered Ready (a measurement, not an assertion on speed).
func TestRegisterThousandNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 1,000 nodes")
	}
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := unlimitedClient(t, cluster)
	cfg := sim.Defaults()
	cfg.Nodes = 1000
	cfg.NamePrefix = "bulk-"
	cfg.RunPods = false
	s := sim.New(client, cfg)
	begin := time.Now()
	startSim(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sim.SimLabel + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for i := range nodes.Items {
		if nodeReady(&nodes.Items[i]) {
			ready++
		}
	}
	if ready != 1000 {
		t.Fatalf("%d of %d nodes Ready, want 1000", ready, len(nodes.Items))
	}
	t.Logf("1000 nodes registered Ready in %v", took)
}

func TestWaitReadyAfterBadConfig(t *testing.T) {
	cfg := sim.Defaults()
	cfg.CPU = "lots"
	s := sim.New(nil, cfg)
	err := s.Start(context.Background())
	if err == nil {
		t.Fatal("Start with an invalid CPU quantity succeeded")
	}
	if werr := s.WaitReady(context.Background()); !errors.Is(werr, sim.ErrStopped) {
		t.Errorf("WaitReady = %v, want ErrStopped", werr)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
}
