package node

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiff-io/skiff/internal/authorizer/rbac"
)

func nodeUser(name string) *rbac.User {
	return &rbac.User{Name: UserPrefix + name, Groups: []string{Group, "system:authenticated"}}
}

func res(u *rbac.User, verb, group, resource, sub, ns, name string) rbac.Attributes {
	return rbac.Attributes{User: u, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub,
		Namespace: ns, Name: name, ResourceRequest: true}
}

// podOn is a pod in ns "team" that references one object of each kind.
func podOn(name, node, suffix string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: "sa-" + suffix,
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "pull-" + suffix}},
			Containers: []corev1.Container{{
				Name: "c",
				Env: []corev1.EnvVar{
					{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-" + suffix}}}},
					{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "envcm-" + suffix}}}},
				},
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "from-" + suffix}}}},
			}},
			InitContainers: []corev1.Container{{Name: "i", EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "initcm-" + suffix}}}}}},
			Volumes: []corev1.Volume{
				{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-" + suffix}}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "volcm-" + suffix}}}},
				{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-" + suffix}}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projcm-" + suffix}}},
				}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim-" + suffix}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
				{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "csi-" + suffix}}}},
			},
		},
	}
}

func withFields(a rbac.Attributes, selector string) rbac.Attributes {
	a.FieldSelector = fields.ParseSelectorOrDie(selector)
	return a
}

func TestGraphGrantsWhatPodsReference(t *testing.T) {
	ctx := context.Background()
	a := New()
	a.PutPod(podOn("web", "a", "x"))
	a.PutPod(podOn("db", "b", "y"))
	a.PutPV(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-x"},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "team", Name: "claim-x"}}})
	a.PutPV(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-y"},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "team", Name: "claim-y"}}})
	na, nb := nodeUser("a"), nodeUser("b")
	noRel := "no relationship found between node 'a' and this object"
	cases := []struct {
		name   string
		attrs  rbac.Attributes
		allow  bool
		reason string
	}{
		{"env secret", res(na, "get", "", "secrets", "", "team", "env-x"), true, ""},
		{"envFrom secret", res(na, "watch", "", "secrets", "", "team", "from-x"), true, ""},
		{"pull secret", res(na, "list", "", "secrets", "", "team", "pull-x"), true, ""},
		{"volume secret", res(na, "get", "", "secrets", "", "team", "vol-x"), true, ""},
		{"projected secret", res(na, "get", "", "secrets", "", "team", "proj-x"), true, ""},
		{"csi secret", res(na, "get", "", "secrets", "", "team", "csi-x"), true, ""},
		{"env configmap", res(na, "get", "", "configmaps", "", "team", "envcm-x"), true, ""},
		{"init envFrom configmap", res(na, "get", "", "configmaps", "", "team", "initcm-x"), true, ""},
		{"volume configmap", res(na, "get", "", "configmaps", "", "team", "volcm-x"), true, ""},
		{"projected configmap", res(na, "get", "", "configmaps", "", "team", "projcm-x"), true, ""},
		{"claim", res(na, "get", "", "persistentvolumeclaims", "", "team", "claim-x"), true, ""},
		{"ephemeral claim", res(na, "get", "", "persistentvolumeclaims", "", "team", "web-scratch"), true, ""},
		{"claim status", res(na, "patch", "", "persistentvolumeclaims", "status", "team", "claim-x"), true, ""},
		{"bound volume", res(na, "get", "", "persistentvolumes", "", "", "pv-x"), true, ""},
		{"token", res(na, "create", "", "serviceaccounts", "token", "team", "sa-x"), true, ""},
		{"own pod", res(na, "get", "", "pods", "", "team", "web"), true, ""},

		{"other node's secret", res(na, "get", "", "secrets", "", "team", "env-y"), false, noRel},
		{"same name elsewhere", res(na, "get", "", "secrets", "", "other", "env-x"), false, noRel},
		{"configmap named as a secret", res(na, "get", "", "configmaps", "", "team", "env-x"), false, noRel},
		{"other node's claim", res(na, "get", "", "persistentvolumeclaims", "", "team", "claim-y"), false, noRel},
		{"other node's volume", res(na, "get", "", "persistentvolumes", "", "", "pv-y"), false, noRel},
		{"other node's token", res(na, "create", "", "serviceaccounts", "token", "team", "sa-y"), false, noRel},
		{"write a secret", res(na, "update", "", "secrets", "", "team", "env-x"), false, "can only read resources of this type"},
		{"list all secrets", res(na, "list", "", "secrets", "", "team", ""), false, "No Object name found"},
		{"secrets everywhere", res(na, "list", "", "secrets", "", "", ""), false, "can only read namespaced object of this type"},
		{"list claims", res(na, "list", "", "persistentvolumeclaims", "", "team", ""), false, "can only get individual resources of this type"},
		{"get the account", res(na, "get", "", "serviceaccounts", "", "team", "sa-x"), true, ""},
		{"get other node's account", res(na, "get", "", "serviceaccounts", "", "team", "sa-y"), false, noRel},
		{"list accounts", res(na, "list", "", "serviceaccounts", "", "team", ""), false, "can only create tokens for individual service accounts"},
		{"create a pod certificate request", res(na, "create", "certificates.k8s.io", "podcertificaterequests", "", "team", ""), true, ""},
		{"watch own pod certificate requests", withFields(res(na, "watch", "certificates.k8s.io", "podcertificaterequests", "", "", ""), "spec.nodeName=a"), true, ""},
		{"list own pod certificate requests in a namespace", withFields(res(na, "list", "certificates.k8s.io", "podcertificaterequests", "", "team", ""), "spec.nodeName=a,spec.signerName=x.io/y"), true, ""},
		{"watch other node's pod certificate requests", withFields(res(na, "watch", "certificates.k8s.io", "podcertificaterequests", "", "", ""), "spec.nodeName=b"), false,
			"can only list/watch podcertificaterequests with nodeName field selector"},
		{"list all pod certificate requests", res(na, "list", "certificates.k8s.io", "podcertificaterequests", "", "", ""), false,
			"can only list/watch podcertificaterequests with nodeName field selector"},
		{"get a pod certificate request", res(na, "get", "certificates.k8s.io", "podcertificaterequests", "", "team", "req-1"), false, "nodes may not get podcertificaterequests"},
		{"delete a pod certificate request", res(na, "delete", "certificates.k8s.io", "podcertificaterequests", "", "team", "req-1"), false, "nodes may not delete podcertificaterequests"},
		{"sign a pod certificate request", res(na, "update", "certificates.k8s.io", "podcertificaterequests", "status", "team", "req-1"), false,
			"nodes may not access the status subresource of PodCertificateRequests"},
		{"own lease", res(na, "update", "coordination.k8s.io", "leases", "", LeaseNamespace, "a"), true, ""},
		{"create a lease", res(na, "create", "coordination.k8s.io", "leases", "", LeaseNamespace, ""), true, ""},
		{"other lease", res(na, "update", "coordination.k8s.io", "leases", "", LeaseNamespace, "b"), false, "can only access node lease with the same name as the requesting node"},
		{"lease elsewhere", res(na, "get", "coordination.k8s.io", "leases", "", "default", "a"), false, `can only access leases in the "kube-node-lease" system namespace`},

		// The generic rules of system:node.
		{"list services", res(na, "list", "", "services", "", "", ""), true, ""},
		// skiff's: the kubelet watches EndpointSlices, the node's DNS
		// Namespaces, and only reads them.
		{"watch endpointslices", res(na, "watch", "discovery.k8s.io", "endpointslices", "", "", ""), true, ""},
		{"update an endpointslice", res(na, "update", "discovery.k8s.io", "endpointslices", "", "team", "web-x"), false, ""},
		{"list namespaces", res(na, "list", "", "namespaces", "", "", ""), true, ""},
		{"delete a namespace", res(na, "delete", "", "namespaces", "", "", "team"), false, ""},
		{"node status", res(na, "patch", "", "nodes", "status", "", "a"), true, ""},
		{"create events", res(na, "create", "", "events", "", "team", ""), true, ""},
		{"token review", res(na, "create", "authentication.k8s.io", "tokenreviews", "", "", ""), true, ""},
		{"delete deployments", res(na, "delete", "apps", "deployments", "", "team", "x"), false, ""},
		{"pod binding", res(na, "create", "", "pods", "binding", "team", "web"), false, ""},

		// Other users: no opinion, no reason.
		{"not a node", res(&rbac.User{Name: "system:node:a"}, "get", "", "secrets", "", "team", "env-x"), false, ""},
		{"unnamed node", res(&rbac.User{Name: "system:node:", Groups: []string{Group}}, "get", "", "secrets", "", "team", "env-x"), false, `unknown node for user "system:node:"`},
		{"b reads its own", res(nb, "get", "", "secrets", "", "team", "env-y"), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			allow, reason, err := a.Authorize(ctx, c.attrs)
			if err != nil || allow != c.allow || reason != c.reason {
				t.Errorf("Authorize = %v %q %v, want %v %q", allow, reason, err, c.allow, c.reason)
			}
		})
	}
}

// The graph follows pods as they are bound, change and go.
func TestGraphFollowsPods(t *testing.T) {
	ctx := context.Background()
	a := New()
	allowed := func(node, secret string) bool {
		ok, _, _ := a.Authorize(ctx, res(nodeUser(node), "get", "", "secrets", "", "team", secret))
		return ok
	}
	pod := podOn("web", "", "x")
	a.PutPod(pod)
	if allowed("a", "env-x") {
		t.Fatal("an unscheduled pod granted its secret")
	}
	pod.Spec.NodeName = "a"
	a.PutPod(pod)
	if !allowed("a", "env-x") {
		t.Fatal("binding the pod to a did not grant its secret to a")
	}
	// A second pod on a shares the secret: deleting one keeps it.
	twin := podOn("web2", "a", "x")
	a.PutPod(twin)
	a.DeletePod("team", "web2")
	if !allowed("a", "env-x") {
		t.Fatal("deleting one of two pods took back the secret the other uses")
	}
	// Changing the reference moves the grant.
	upd := pod.DeepCopy()
	upd.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "env-new"
	a.PutPod(upd)
	if allowed("a", "env-x") || !allowed("a", "env-new") {
		t.Fatal("an updated reference did not move the grant")
	}
	// A status update changes nothing.
	st := upd.DeepCopy()
	st.Status.Phase = corev1.PodRunning
	a.PutPod(st)
	if !allowed("a", "env-new") {
		t.Fatal("a status update took the grant back")
	}
	a.DeletePod("team", "web")
	if allowed("a", "env-new") || allowed("a", "pull-x") {
		t.Fatal("deleting the pod did not take back its grants")
	}
	if len(a.g.counts) != 0 || len(a.g.pods) != 0 {
		t.Fatalf("the graph kept %d counts and %d pods after every pod went", len(a.g.counts), len(a.g.pods))
	}
	// A volume unbound from the claim is no longer granted.
	a.PutPod(podOn("web", "a", "x"))
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "team", Name: "claim-x"}}}
	a.PutPV(pv)
	if ok, _, _ := a.Authorize(ctx, res(nodeUser("a"), "get", "", "persistentvolumes", "", "", "pv")); !ok {
		t.Fatal("the bound volume was not granted")
	}
	pv.Spec.ClaimRef = nil
	a.PutPV(pv)
	if ok, _, _ := a.Authorize(ctx, res(nodeUser("a"), "get", "", "persistentvolumes", "", "", "pv")); ok {
		t.Fatal("a released volume stayed granted")
	}
}

func TestRulesForNodes(t *testing.T) {
	a := New()
	if _, _, incomplete, err := a.RulesFor(context.Background(), nodeUser("a"), "team"); !incomplete || err == nil {
		t.Errorf("RulesFor a node: incomplete=%v err=%v, want incomplete with an error", incomplete, err)
	}
	if _, _, incomplete, err := a.RulesFor(context.Background(), &rbac.User{Name: "eve"}, "team"); incomplete || err != nil {
		t.Errorf("RulesFor another user: incomplete=%v err=%v, want nothing", incomplete, err)
	}
}

// TestNodesReadClusterTrustBundles: a kubelet reads every
// ClusterTrustBundle for clusterTrustBundle projections (upstream's
// system:node rule), and writes none.
func TestNodesReadClusterTrustBundles(t *testing.T) {
	a := New()
	n := nodeUser("a")
	for _, tc := range []struct {
		verb, name string
		allow      bool
	}{
		{"get", "example.com:foo:v1", true},
		{"list", "", true},
		{"watch", "", true},
		{"create", "", false},
		{"update", "example.com:foo:v1", false},
		{"delete", "example.com:foo:v1", false},
	} {
		ok, _, err := a.Authorize(context.Background(), res(n, tc.verb, "certificates.k8s.io", "clustertrustbundles", "", "", tc.name))
		if err != nil || ok != tc.allow {
			t.Errorf("%s clustertrustbundles: allowed %v (err %v), want %v", tc.verb, ok, err, tc.allow)
		}
	}
	if ok, _, _ := a.Authorize(context.Background(), res(&rbac.User{Name: "eve"}, "get", "certificates.k8s.io", "clustertrustbundles", "", "", "x")); ok {
		t.Error("a user that is no node was allowed")
	}
}

// BenchmarkAuthorize is one decision with 10,000 pods over 100 nodes in
// the graph.
func BenchmarkAuthorize(b *testing.B) {
	a := New()
	for i := 0; i < 10000; i++ {
		p := podOn(fmt.Sprintf("pod-%d", i), fmt.Sprintf("node-%d", i%100), fmt.Sprint(i))
		a.PutPod(p)
	}
	ctx := context.Background()
	n := nodeUser("node-7")
	cases := []struct {
		name  string
		attrs rbac.Attributes
		allow bool
	}{
		{"secret-allowed", res(n, "get", "", "secrets", "", "team", "env-107"), true},
		{"secret-denied", res(n, "get", "", "secrets", "", "team", "env-108"), false},
		{"generic-rule", res(n, "patch", "", "pods", "status", "team", "pod-107"), true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if ok, _, _ := a.Authorize(ctx, c.attrs); ok != c.allow {
					b.Fatalf("allowed = %v", ok)
				}
			}
		})
	}
	b.Run("put-pod-status-only", func(b *testing.B) {
		p := podOn("pod-107", "node-7", "107")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a.PutPod(p)
		}
	})
}
