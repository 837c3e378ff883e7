package integration

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/replication"
	"github.com/skiff-io/skiff/test/framework"
)

func resources(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func quotaTestPod(name string, requests corev1.ResourceList) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: "pause",
			Resources: corev1.ResourceRequirements{Requests: requests}}}},
	}
}

// createQuota creates a quota and waits until the controller has
// computed its usage of every resource it bounds.
func createQuota(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, hard corev1.ResourceList) {
	t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create quota %s: %v", name, err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for r := range hard {
			if _, ok := q.Status.Used[r]; !ok {
				return false
			}
		}
		return true
	})
}

// expectForbidden checks that err is upstream's 403 with message msg.
func expectForbidden(t *testing.T, err error, msg string) {
	t.Helper()
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Code != http.StatusForbidden || st.Status().Reason != metav1.StatusReasonForbidden {
		t.Fatalf("want 403 Forbidden, got %v", err)
	}
	if st.Status().Message != msg {
		t.Fatalf("message:\n got %s\nwant %s", st.Status().Message, msg)
	}
}

// ResourceQuota admission, as upstream's "capture the life of a pod /
// service" conformance tests drive it: what fits is admitted and charged
// to status.used at once, what does not is refused with 403 and
// upstream's message, and concurrent creates never pass the limit.
func TestResourceQuotaAdmission(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("resourcequota"))
	ctx := ctxT(t)
	cs := c.Client
	const ns = "quota"
	mustNamespace(t, cs, ns)
	createQuota(ctx, t, cs, ns, "test-quota", resources("pods", "5", "cpu", "1", "memory", "500Mi",
		"services", "10", "services.nodeports", "1", "services.loadbalancers", "1", "count/replicasets.apps", "5"))

	pods := cs.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, quotaTestPod("test-pod", resources("cpu", "500m", "memory", "252Mi")), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a pod that fits: %v", err)
	}
	// Charged by admission, before the controller sees the pod.
	q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "test-quota", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if used := q.Status.Used[corev1.ResourceCPU]; used.String() != "500m" {
		t.Errorf("cpu used right after the create = %s, want 500m", used.String())
	}
	_, err = pods.Create(ctx, quotaTestPod("fail-pod", resources("cpu", "600m", "memory", "100Mi")), metav1.CreateOptions{})
	expectForbidden(t, err, `pods "fail-pod" is forbidden: exceeded quota: test-quota, requested: cpu=600m, used: cpu=500m, limited: cpu=1`)
	_, err = pods.Create(ctx, quotaTestPod("no-memory", resources("cpu", "100m")), metav1.CreateOptions{})
	expectForbidden(t, err, `pods "no-memory" is forbidden: failed quota: test-quota: must specify memory for: pause`)

	// Four more pods fit the pods limit of 5; ten racing creates admit
	// exactly four.
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := pods.Create(ctx, quotaTestPod(fmt.Sprintf("race-%d", i), resources("cpu", "10m", "memory", "1Mi")), metav1.CreateOptions{})
			switch {
			case err == nil:
				mu.Lock()
				admitted++
				mu.Unlock()
			case !apierrors.IsForbidden(err) && !apierrors.IsConflict(err):
				t.Errorf("race-%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if list, err := pods.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 5 || admitted != 4 {
		t.Fatalf("racing creates: admitted %d, %d pods stored (err %v); want 4 and 5", admitted, len(list.Items), err)
	}

	svcs := cs.CoreV1().Services(ns)
	svc := func(name string, typ corev1.ServiceType) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{Port: 80}}}}
		if typ == corev1.ServiceTypeLoadBalancer {
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		}
		return s
	}
	for _, s := range []*corev1.Service{svc("test-service", corev1.ServiceTypeClusterIP), svc("test-service-np", corev1.ServiceTypeNodePort)} {
		if _, err := svcs.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("service %s: %v", s.Name, err)
		}
	}
	_, err = svcs.Create(ctx, svc("test-service-lb", corev1.ServiceTypeLoadBalancer), metav1.CreateOptions{})
	expectForbidden(t, err, `services "test-service-lb" is forbidden: exceeded quota: test-quota, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1`)

	// The controller agrees with what admission charged, and releases
	// usage on delete.
	if err := svcs.Delete(ctx, "test-service-np", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "test-quota", metav1.GetOptions{})
		if err != nil {
			return false
		}
		u := q.Status.Used
		return u.Pods().String() == "5" && u.Cpu().String() == "540m" && u.Name(corev1.ResourceServices, resource.DecimalSI).String() == "1" &&
			u.Name(corev1.ResourceServicesNodePorts, resource.DecimalSI).String() == "0" &&
			u.Name("count/replicasets.apps", resource.DecimalSI).String() == "0"
	})
}

// LimitRanger, as upstream's LimitRange conformance test drives it: a pod
// without resources gets the defaults, one below min is refused.
func TestLimitRangerAdmission(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	const ns = "limits"
	mustNamespace(t, cs, ns)
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limit-range"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Min:            resources("cpu", "50m", "memory", "100Mi"),
		Max:            resources("cpu", "500m", "memory", "500Mi"),
		Default:        resources("cpu", "500m", "memory", "500Mi"),
		DefaultRequest: resources("cpu", "100m", "memory", "200Mi"),
	}}}}
	if _, err := cs.CoreV1().LimitRanges(ns).Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, quotaTestPod("pod-no-resources", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := pod.Spec.Containers[0].Resources
	if r.Requests.Cpu().String() != "100m" || r.Requests.Memory().String() != "200Mi" || r.Limits.Cpu().String() != "500m" || r.Limits.Memory().String() != "500Mi" {
		t.Fatalf("resources = %+v, want the limit range's defaults", r)
	}
	if got := pod.Annotations["kubernetes.io/limit-ranger"]; got != "LimitRanger plugin set: cpu, memory request for container pause; cpu, memory limit for container pause" {
		t.Errorf("annotation = %q", got)
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, quotaTestPod("pfpod", resources("cpu", "10m", "memory", "150Mi")), metav1.CreateOptions{})
	expectForbidden(t, err, `pods "pfpod" is forbidden: minimum cpu usage per Container is 50m, but request is 10m`)
}

// A ReplicationController whose pods quota refuses reports ReplicaFailure,
// and drops it once scaled to what quota allows (upstream's "should
// surface a failure condition on a common issue like exceeded quota").
func TestReplicationControllerQuotaFailure(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("resourcequota", replication.Name))
	ctx := ctxT(t)
	cs := c.Client
	const ns = "rcquota"
	mustNamespace(t, cs, ns)
	createQuota(ctx, t, cs, ns, "condition-test", resources("pods", "2"))
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "condition-test"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](3),
			Selector: map[string]string{"name": "condition-test"},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"name": "condition-test"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
			},
		},
	}
	if _, err := cs.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	failure := func() *corev1.ReplicationControllerCondition {
		got, err := cs.CoreV1().ReplicationControllers(ns).Get(ctx, rc.Name, metav1.GetOptions{})
		if err != nil || got.Status.ObservedGeneration < got.Generation {
			return nil
		}
		for i := range got.Status.Conditions {
			if got.Status.Conditions[i].Type == corev1.ReplicationControllerReplicaFailure {
				return &got.Status.Conditions[i]
			}
		}
		return nil
	}
	framework.Eventually(t, 30*time.Second, func() bool { return failure() != nil })
	if cond := failure(); cond.Status != corev1.ConditionTrue || cond.Reason != "FailedCreate" {
		t.Errorf("condition = %+v, want True FailedCreate", cond)
	}
	if list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 2 {
		t.Fatalf("pods: %d (err %v), want the 2 quota allows", len(list.Items), err)
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scaled, err := cs.CoreV1().ReplicationControllers(ns).Get(ctx, rc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		scaled.Spec.Replicas = ptr.To[int32](2)
		_, err = cs.CoreV1().ReplicationControllers(ns).Update(ctx, scaled, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		got, err := cs.CoreV1().ReplicationControllers(ns).Get(ctx, rc.Name, metav1.GetOptions{})
		return err == nil && got.Status.ObservedGeneration >= got.Generation && len(got.Status.Conditions) == 0
	})
}
