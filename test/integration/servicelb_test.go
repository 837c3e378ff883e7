package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/cloud/servicelb"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// The service-lb controller with the local provider over a two-address
// pool: Services of type LoadBalancer get ingress addresses and the
// cleanup finalizer, a full pool is reported and retried, a type change
// and a deletion free the address for the Service waiting, another
// loadBalancerClass is left alone, and a restarted controller keeps the
// assignments it finds in the Services' status.
func TestServiceLoadBalancer(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.NewClient(t)
	const ns = "lb"
	mustNamespace(t, cs, ns)
	svcs := cs.CoreV1().Services(ns)

	recorder := record.NewFakeRecorder(framework.RecorderSize)
	start := func() func() {
		return framework.RunController(t, cs, recorder, framework.Builder(servicelb.New, servicelb.Options{Pool: "127.0.100.0/30"}))
	}
	stop := start()

	create := func(name string, mutate ...func(*corev1.Service)) {
		t.Helper()
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{"app": name},
				Ports:    []corev1.ServicePort{{Port: 80}},
			},
		}
		for _, m := range mutate {
			m(s)
		}
		if _, err := svcs.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}

	create("a")
	waitIngress(ctx, t, cs, ns, "a", "127.0.100.1")
	waitEvent(t, recorder, "Normal EnsuredLoadBalancer Ensured load balancer")
	create("b", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "127.0.100.2" })
	waitIngress(ctx, t, cs, ns, "b", "127.0.100.2")
	// Another implementation's class: never ours.
	create("other", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") })

	// The pool is full: c is reported and waits.
	create("c")
	waitEvent(t, recorder, "Warning SyncLoadBalancerFailed Error syncing load balancer: failed to ensure load balancer: all 2 addresses of 127.0.100.0/30 are assigned")

	// a becomes a ClusterIP Service: its address and finalizer go, and
	// c, waiting, gets the address.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := svcs.Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Type = corev1.ServiceTypeClusterIP
		_, err = svcs.Update(ctx, s, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitService(ctx, t, cs, ns, "a", "no ingress and no finalizer", func(s *corev1.Service) bool {
		return len(s.Status.LoadBalancer.Ingress) == 0 && !slices.Contains(s.Finalizers, servicelb.Finalizer)
	})
	waitIngress(ctx, t, cs, ns, "c", "127.0.100.1")

	// Deleting b waits for the controller to free its address, then the
	// next Service gets it.
	if err := svcs.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, cs, ns, "b")
	create("d")
	waitIngress(ctx, t, cs, ns, "d", "127.0.100.2")

	if s, err := svcs.Get(ctx, "other", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if len(s.Finalizers) != 0 || len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Fatalf("service with another loadBalancerClass was touched: finalizers %v, status %+v", s.Finalizers, s.Status.LoadBalancer)
	}

	// Restart. While the controller is down, d is deleted (its finalizer
	// holds it) and e is created. The new controller restores c and d
	// from their status, cleans d up, and gives e d's address — not c's.
	stop()
	if err := svcs.Delete(ctx, "d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	create("e")
	stop = start()
	defer stop()
	waitGone(ctx, t, cs, ns, "d")
	waitIngress(ctx, t, cs, ns, "e", "127.0.100.2")
	waitIngress(ctx, t, cs, ns, "c", "127.0.100.1")
}

// waitService polls the Service until cond holds.
func waitService(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, what string, cond func(*corev1.Service) bool) *corev1.Service {
	t.Helper()
	var last *corev1.Service
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = s
		return cond(s), nil
	})
	if err != nil {
		t.Fatalf("service %s/%s: want %s: %v (last: finalizers %v, status %+v)", ns, name, what, err, last.GetFinalizers(), last.Status)
	}
	return last
}

// waitIngress waits until the Service's status holds exactly ip with ipMode
// VIP and the Service carries the cleanup finalizer.
func waitIngress(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, ip string) {
	t.Helper()
	waitService(ctx, t, cs, ns, name, "ingress "+ip, func(s *corev1.Service) bool {
		ing := s.Status.LoadBalancer.Ingress
		return len(ing) == 1 && ing[0].IP == ip && ing[0].IPMode != nil && *ing[0].IPMode == corev1.LoadBalancerIPModeVIP &&
			slices.Contains(s.Finalizers, servicelb.Finalizer)
	})
}

func waitGone(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("service %s/%s not deleted: %v", ns, name, err)
	}
}

// waitEvent reads recorded events until one starts with prefix.
func waitEvent(t *testing.T, recorder *record.FakeRecorder, prefix string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var seen []string
	for {
		select {
		case ev := <-recorder.Events:
			if strings.HasPrefix(ev, prefix) {
				return
			}
			seen = append(seen, ev)
		case <-deadline:
			t.Fatalf("no event %q; saw %q", prefix, seen)
		}
	}
}

// The server runs service-lb among its default controllers, with the pool
// of --lb-pool.
func TestServiceLoadBalancerInServer(t *testing.T) {
	c := framework.StartInProcess(t, func(cfg *server.Config) { cfg.LBPool = "127.0.101.0/24" })
	ctx := ctxT(t)
	cs := c.NewClient(t)
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(ctx, t, cs, "default", "web", "127.0.101.1")
}
