package endpointslice_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/endpoints"
	"github.com/skiff-io/skiff/internal/controller/endpointslice"
	"github.com/skiff-io/skiff/test/framework"
)

// TestServiceEndpoints runs the EndpointSlice and Endpoints controllers
// against a real API server: a service over three ready pods gets one
// slice with three ready endpoints and an Endpoints object with three
// addresses; a pod going not ready moves to not ready in both; a deleted
// pod leaves both; deleted Endpoints come back; deleting the service
// deletes its Endpoints.
func TestServiceEndpoints(t *testing.T) {
	_, client, _ := framework.StartController(t, func(client kubernetes.Interface, factory informers.SharedInformerFactory, rec record.EventRecorder) (framework.Group, error) {
		sc, err := endpointslice.New(client, factory, rec)
		if err != nil {
			return nil, err
		}
		ec, err := endpoints.New(client, factory, rec)
		if err != nil {
			return nil, err
		}
		return framework.Group{sc, ec}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const ns = "default"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		createReadyPod(ctx, t, client, ns, fmt.Sprintf("web-%d", i), fmt.Sprintf("10.42.0.%d", i+10))
	}

	waitFor(ctx, t, "one slice with 3 ready endpoints and Endpoints with 3 addresses", func() (bool, string) {
		slices := serviceSlices(ctx, t, client, ns, "web")
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(slices) != 1 {
			return false, fmt.Sprintf("%d slices", len(slices))
		}
		ready, _ := countSlice(slices)
		addrs, notReady := countEndpoints(ep)
		if ready != 3 || addrs != 3 || notReady != 0 {
			return false, fmt.Sprintf("slice ready %d, endpoints %d/%d", ready, addrs, notReady)
		}
		s := slices[0]
		if len(s.Ports) != 1 || *s.Ports[0].Port != 8080 || s.Endpoints[0].Zone == nil || *s.Endpoints[0].Zone != "zone-a" {
			return false, fmt.Sprintf("ports %v zone %v", s.Ports, s.Endpoints[0].Zone)
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Ports) != 1 || ep.Subsets[0].Ports[0].Port != 8080 {
			return false, fmt.Sprintf("endpoints subsets %v", ep.Subsets)
		}
		return true, ""
	})
	sliceName := serviceSlices(ctx, t, client, ns, "web")[0].Name

	// Steady state: nothing is rewritten (the controllers' own writes
	// requeue the service; a plan that is never empty would loop).
	sliceRV := serviceSlices(ctx, t, client, ns, "web")[0].ResourceVersion
	ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	consistently(ctx, t, "slice and endpoints unchanged", func() bool {
		e, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		s := serviceSlices(ctx, t, client, ns, "web")
		return err == nil && e.ResourceVersion == ep.ResourceVersion && len(s) == 1 && s[0].ResourceVersion == sliceRV
	})

	// web-1 goes not ready.
	setReady(ctx, t, client, ns, "web-1", corev1.ConditionFalse)
	waitFor(ctx, t, "web-1 not ready", func() (bool, string) {
		slices := serviceSlices(ctx, t, client, ns, "web")
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready, total := countSlice(slices)
		addrs, notReady := countEndpoints(ep)
		return ready == 2 && total == 3 && addrs == 2 && notReady == 1,
			fmt.Sprintf("slice %d/%d ready, endpoints %d ready %d not", ready, total, addrs, notReady)
	})
	if s := serviceSlices(ctx, t, client, ns, "web"); len(s) != 1 || s[0].Name != sliceName {
		t.Errorf("slice was replaced instead of updated in place")
	}

	// web-0 is deleted.
	if err := client.CoreV1().Pods(ns).Delete(ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "web-0 gone", func() (bool, string) {
		if _, err := client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{}); err == nil {
			return false, "pod still exists (terminating)"
		}
		slices := serviceSlices(ctx, t, client, ns, "web")
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready, total := countSlice(slices)
		addrs, notReady := countEndpoints(ep)
		return ready == 1 && total == 2 && addrs == 1 && notReady == 1,
			fmt.Sprintf("slice %d/%d ready, endpoints %d ready %d not", ready, total, addrs, notReady)
	})

	// Endpoints deleted under a live service come back.
	if err := client.CoreV1().Endpoints(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "endpoints recreated", func() (bool, string) {
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		addrs, notReady := countEndpoints(ep)
		return addrs == 1 && notReady == 1, fmt.Sprintf("%d/%d", addrs, notReady)
	})

	// Deleting the service deletes its Endpoints.
	if err := client.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "endpoints deleted with the service", func() (bool, string) {
		_, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		return err != nil, "endpoints still there"
	})
}

func createReadyPod(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, ip string) {
	t.Helper()
	framework.CreateReadyPod(ctx, t, client, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "nginx",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	})
}

func setReady(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, st corev1.ConditionStatus) {
	t.Helper()
	p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func serviceSlices(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, svc string) []discoveryv1.EndpointSlice {
	t.Helper()
	list, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc + "," + discoveryv1.LabelManagedBy + "=" + endpointslice.ManagedBy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func countSlice(slices []discoveryv1.EndpointSlice) (ready, total int) {
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			total++
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ready++
			}
		}
	}
	return ready, total
}

func countEndpoints(ep *corev1.Endpoints) (ready, notReady int) {
	for _, s := range ep.Subsets {
		ready += len(s.Addresses)
		notReady += len(s.NotReadyAddresses)
	}
	return ready, notReady
}

// consistently checks that cond holds for a second: the check that a
// controller stays quiet, which no event can signal.
func consistently(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("%s: condition broke", what)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		ok, msg := cond()
		last = msg
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
}
