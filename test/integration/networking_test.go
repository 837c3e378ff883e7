package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// networking.k8s.io/v1 and node.k8s.io/v1 are served as upstream serves
// them: in discovery (aggregated too) and OpenAPI, with CRUD, the ingress
// status subresource, the default ServiceCIDR the server creates from
// --service-cidr, upstream's table columns and validation.
func TestNetworkingAndNodeAPIs(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "ing")

	// Discovery, plain and aggregated.
	for gv, want := range map[string][]string{
		"networking.k8s.io/v1": {"ingresses", "ingresses/status", "ingressclasses", "ipaddresses", "servicecidrs", "servicecidrs/status"},
		"node.k8s.io/v1":       {"runtimeclasses"},
	} {
		list, err := cs.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Fatalf("discovery of %s: %v", gv, err)
		}
		var got []string
		for _, r := range list.APIResources {
			got = append(got, r.Name)
		}
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%s resources (-want +got):\n%s", gv, diff)
		}
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/apis").
		SetHeader("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").DoRaw(ctx)
	if err != nil {
		t.Fatalf("aggregated discovery: %v", err)
	}
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(raw, &agg); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, g := range agg.Items {
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				found[g.Name+"/"+v.Version+"/"+r.Resource] = true
			}
		}
	}
	for _, want := range []string{"networking.k8s.io/v1/ingresses", "networking.k8s.io/v1/ingressclasses", "networking.k8s.io/v1/servicecidrs",
		"networking.k8s.io/v1/ipaddresses", "node.k8s.io/v1/runtimeclasses"} {
		if !found[want] {
			t.Errorf("aggregated discovery lacks %s", want)
		}
	}
	for path, def := range map[string]string{
		"/openapi/v3/apis/networking.k8s.io/v1": "io.k8s.api.networking.v1.Ingress",
		"/openapi/v3/apis/node.k8s.io/v1":       "io.k8s.api.node.v1.RuntimeClass",
	} {
		doc, err := cs.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
		if err != nil || !strings.Contains(string(doc), `"`+def+`"`) {
			t.Errorf("OpenAPI %s: %v, %s missing", path, err, def)
		}
	}

	// The default ServiceCIDR, Ready, with the server's range; /status
	// serves the same object.
	sc, err := cs.NetworkingV1().ServiceCIDRs().Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("default ServiceCIDR: %v", err)
	}
	if diff := cmp.Diff([]string{"10.43.0.0/16"}, sc.Spec.CIDRs); diff != "" || !apimeta.IsStatusConditionTrue(sc.Status.Conditions, networkingv1.ServiceCIDRConditionReady) {
		t.Errorf("default ServiceCIDR %v %+v", sc.Spec.CIDRs, sc.Status.Conditions)
	}
	var status networkingv1.ServiceCIDR
	if err := cs.NetworkingV1().RESTClient().Get().Resource("servicecidrs").Name("kubernetes").SubResource("status").Do(ctx).Into(&status); err != nil || status.UID != sc.UID {
		t.Errorf("servicecidrs/status: %v, uid %s", err, status.UID)
	}
	if _, err := cs.NetworkingV1().ServiceCIDRs().Create(ctx, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.0.0.0/8", "11.0.0.0/8"}}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "may specify no more than one IP for each IP family") {
		t.Errorf("two IPv4 ranges: want 422, got %v", err)
	}

	// Ingress: CRUD, status, validation, table.
	ings := cs.NetworkingV1().Ingresses("ing")
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "foo.bar.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
		Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "1.1.1.1"}}}},
	}
	created, err := ings.Create(ctx, ing, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ingress: %v", err)
	}
	if len(created.Status.LoadBalancer.Ingress) != 0 || created.Generation != 1 {
		t.Errorf("created ingress: status %+v, generation %d", created.Status, created.Generation)
	}
	patched, err := ings.Patch(ctx, "web", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"patchedstatus":"true"}},"status":{"loadBalancer":{"ingress":[{"ip":"169.1.1.1"}]}}}`), metav1.PatchOptions{}, "status")
	if err != nil || patched.Status.LoadBalancer.Ingress[0].IP != "169.1.1.1" || patched.Annotations["patchedstatus"] != "true" {
		t.Fatalf("patch ingresses/status: %v %+v", err, patched)
	}
	list, err := ings.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list ingresses: %v, %d", err, len(list.Items))
	}
	bad := ing.DeepCopy()
	bad.Name, bad.Spec.Rules[0].HTTP.Paths[0].PathType = "bad", nil
	if _, err := ings.Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "pathType must be specified") {
		t.Errorf("ingress without pathType: want 422, got %v", err)
	}
	var table metav1.Table
	if err := cs.NetworkingV1().RESTClient().Get().Namespace("ing").Resource("ingresses").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Into(&table); err != nil {
		t.Fatalf("ingress table: %v", err)
	}
	var cols []string
	for _, col := range table.ColumnDefinitions {
		cols = append(cols, col.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Class", "Hosts", "Address", "Ports", "Age"}, cols); diff != "" || len(table.Rows) != 1 ||
		table.Rows[0].Cells[2] != "foo.bar.com" || table.Rows[0].Cells[3] != "169.1.1.1" {
		t.Errorf("ingress table: columns (-want +got) %s, rows %+v", diff, table.Rows)
	}
	if err := ings.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=web"}); err != nil {
		t.Fatalf("deletecollection ingresses: %v", err)
	}

	// IngressClass: defaulted scope, immutable controller.
	ic, err := cs.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: networkingv1.IngressClassSpec{Controller: "example.com/controller",
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "fookind", Name: "fooname"}}}, metav1.CreateOptions{})
	if err != nil || ic.Spec.Parameters.Scope == nil || *ic.Spec.Parameters.Scope != "Cluster" {
		t.Fatalf("create ingressclass: %v %+v", err, ic)
	}
	ic.Spec.Controller = "example.com/other"
	if _, err := cs.NetworkingV1().IngressClasses().Update(ctx, ic, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("controller change: want 422, got %v", err)
	}
	if err := cs.NetworkingV1().IngressClasses().Delete(ctx, "nginx", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete ingressclass: %v", err)
	}

	// IPAddress: IPv4 and IPv6 names, the name must be an IP.
	ipRef := &networkingv1.ParentReference{Group: "mygroup", Resource: "myresources", Namespace: "foo", Name: "bar"}
	for _, name := range []string{"255.255.255.255", "fe80::42:1dff:fe84:f9e2"} {
		if _, err := cs.NetworkingV1().IPAddresses().Create(ctx, &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"t": "x"}},
			Spec: networkingv1.IPAddressSpec{ParentRef: ipRef}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ipaddress %s: %v", name, err)
		}
	}
	if _, err := cs.NetworkingV1().IPAddresses().Create(ctx, &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IPAddressSpec{ParentRef: ipRef}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("ipaddress named web: want 422, got %v", err)
	}
	if err := cs.NetworkingV1().IPAddresses().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "t=x"}); err != nil {
		t.Fatalf("deletecollection ipaddresses: %v", err)
	}
	if left, err := cs.NetworkingV1().IPAddresses().List(ctx, metav1.ListOptions{LabelSelector: "t=x"}); err != nil || len(left.Items) != 0 {
		t.Errorf("ipaddresses left: %v %v", err, left)
	}

	// RuntimeClass CRUD: a duplicate is 409, the handler a DNS label.
	rcs := cs.NodeV1().RuntimeClasses()
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}
	if _, err := rcs.Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create runtimeclass: %v", err)
	}
	if _, err := rcs.Create(ctx, rc, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: want 409, got %v", err)
	}
	if _, err := rcs.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Handler: "Bad.Handler"}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("handler not a DNS label: want 422, got %v", err)
	}
	if err := rcs.Delete(ctx, "gvisor", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete runtimeclass: %v", err)
	}
}

// The RuntimeClass admission plugin refuses pods naming a class that does
// not exist (403, upstream's message, dry run too) and copies a class's
// overhead and scheduling into the pod.
func TestRuntimeClassAdmission(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "rc")
	pod := func(class string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "rc-"},
			Spec: corev1.PodSpec{RuntimeClassName: &class, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	}
	for _, opts := range []metav1.CreateOptions{{}, {DryRun: []string{metav1.DryRunAll}}} {
		_, err := cs.CoreV1().Pods("rc").Create(ctx, pod("missing"), opts)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `pod rejected: RuntimeClass "missing" not found`) {
			t.Errorf("missing class (dry run %v): want 403, got %v", opts.DryRun, err)
		}
	}

	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("1Mi")}
	if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "heavy"}, Handler: "runc",
		Overhead:   &nodev1.Overhead{PodFixed: overhead},
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox": "yes"}, Tolerations: []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Pods("rc").Create(ctx, pod("heavy"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod with class heavy: %v", err)
	}
	if !got.Spec.Overhead.Cpu().Equal(overhead[corev1.ResourceCPU]) || !got.Spec.Overhead.Memory().Equal(overhead[corev1.ResourceMemory]) {
		t.Errorf("overhead %v, want the class's %v", got.Spec.Overhead, overhead)
	}
	if got.Spec.NodeSelector["sandbox"] != "yes" {
		t.Errorf("nodeSelector %v", got.Spec.NodeSelector)
	}
	tolerated := false
	for _, tol := range got.Spec.Tolerations {
		tolerated = tolerated || tol.Key == "sandbox"
	}
	if !tolerated {
		t.Errorf("tolerations %+v lack the class's", got.Spec.Tolerations)
	}

	other := pod("heavy")
	other.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	if _, err := cs.CoreV1().Pods("rc").Create(ctx, other, metav1.CreateOptions{}); !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead") {
		t.Errorf("other overhead: want 403, got %v", err)
	}
}
