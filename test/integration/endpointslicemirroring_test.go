package integration

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/test/framework"
)

// The Endpoints of a Service without a selector are mirrored into one
// EndpointSlice that follows its updates and goes with it, as upstream's
// conformance test "should mirror a custom Endpoints resource through
// create update and delete" checks; a Service with a selector gets no
// mirrored slice.
func TestEndpointSliceMirroring(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("endpointslicemirroring", "endpoints", "endpointslice"))
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "mirror")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "custom"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "example", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if _, err := cs.CoreV1().Services("mirror").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Subsets: []corev1.EndpointSubset{{
		Ports: []corev1.EndpointPort{{Port: 80}}, Addresses: []corev1.EndpointAddress{{IP: "10.1.2.3"}}}}}
	ep, err := cs.CoreV1().Endpoints("mirror").Create(ctx, ep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	selector := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=custom"}
	// slices waits for exactly one mirrored slice holding address and
	// returns how the wait ended.
	slices := func(address string) string {
		var last string
		framework.Eventually(t, 12*time.Second, func() bool {
			l, err := cs.DiscoveryV1().EndpointSlices("mirror").List(ctx, selector)
			if err != nil {
				last = err.Error()
				return false
			}
			if address == "" {
				last = "slices left"
				return len(l.Items) == 0
			}
			if len(l.Items) != 1 {
				last = "not one slice"
				return false
			}
			s := l.Items[0]
			last = "slice " + s.Name
			return len(s.Ports) == 1 && *s.Ports[0].Port == 80 && len(s.Endpoints) == 1 &&
				len(s.Endpoints[0].Addresses) == 1 && s.Endpoints[0].Addresses[0] == address &&
				s.Labels[discoveryv1.LabelManagedBy] == "endpointslicemirroring-controller.k8s.io"
		})
		return last
	}
	slices("10.1.2.3")

	ep.Subsets[0].Addresses = []corev1.EndpointAddress{{IP: "10.2.3.4"}}
	if _, err := cs.CoreV1().Endpoints("mirror").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	slices("10.2.3.4")

	if err := cs.CoreV1().Endpoints("mirror").Delete(ctx, "custom", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	slices("")

	// A Service with a selector: its Endpoints are the endpoints
	// controller's (skip-mirror), and nothing is mirrored.
	sel := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "selected"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "x"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cs.CoreV1().Services("mirror").Create(ctx, sel, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() bool {
		e, err := cs.CoreV1().Endpoints("mirror").Get(ctx, "selected", metav1.GetOptions{})
		return err == nil && e.Labels["endpointslice.kubernetes.io/skip-mirror"] == "true"
	})
	time.Sleep(time.Second)
	l, err := cs.DiscoveryV1().EndpointSlices("mirror").List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelManagedBy + "=endpointslicemirroring-controller.k8s.io"})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("mirrored slices of a selected service: %v %d, want none", err, len(l.Items))
	}
}
