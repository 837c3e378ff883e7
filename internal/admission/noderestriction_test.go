package admission

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// objects is a storage.Interface holding objects by key (Get only).
type objects struct {
	storage.Interface
	byKey map[string]runtime.Object
}

func (o objects) Get(_ context.Context, key, _ string, out runtime.Object) error {
	obj, ok := o.byKey[key]
	if !ok {
		return storage.ErrNotFound
	}
	switch v := obj.(type) {
	case *corev1.Pod:
		v.DeepCopyInto(out.(*corev1.Pod))
	case *corev1.Node:
		v.DeepCopyInto(out.(*corev1.Node))
	}
	return nil
}

func TestNodeRestriction(t *testing.T) {
	var (
		podsR   = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "pods", Namespaced: true}
		nodesR  = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "nodes"}
		leasesR = &registry.Resource{GroupVersion: schema.GroupVersion{Group: "coordination.k8s.io", Version: "v1"}, Name: "leases", Namespaced: true}
	)
	pod := func(name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, Labels: map[string]string{"app": "x"}},
			Spec: corev1.PodSpec{NodeName: node}}
	}
	nodeA := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "uid-a", Labels: map[string]string{corev1.LabelHostname: "a"}}}
	mirror := func(mut func(p *corev1.Pod)) *corev1.Pod {
		p := pod("static", "a")
		p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "a", UID: "uid-a", Controller: ptr.To(true)}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	nodeWith := func(mut func(n *corev1.Node)) *corev1.Node {
		n := nodeA.DeepCopy()
		mut(n)
		return n
	}
	p := &NodeRestriction{
		Pods: objects{byKey: map[string]runtime.Object{
			"team/mine": pod("mine", "a"), "team/theirs": pod("theirs", "b"),
		}},
		PodKey:  func(ns, name string) string { return ns + "/" + name },
		Nodes:   objects{byKey: map[string]runtime.Object{"a": nodeA}},
		NodeKey: func(name string) string { return name },
	}
	a := &apiserver.User{Name: "system:node:a", Groups: []string{"system:nodes", "system:authenticated"}}
	relabelled := pod("mine", "a")
	relabelled.Labels["app"] = "y"

	cases := []struct {
		name string
		user *apiserver.User
		req  apiserver.AdmissionRequest
		want string // "" allowed
	}{
		{"own node status", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: nodesR, Sub: "status", Name: "a", Obj: nodeA, Old: nodeA}, ""},
		{"other node", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: nodesR, Name: "b", Obj: nodeA, Old: nodeA},
			`nodes "b" is forbidden: node "a" is not allowed to modify node "b"`},
		{"create other node", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: nodesR, Obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b"}}},
			`nodes "b" is forbidden: node "a" is not allowed to modify node "b"`},
		{"delete other node", a, apiserver.AdmissionRequest{Operation: apiserver.Delete, Resource: nodesR, Name: "b", Old: nodeA},
			`nodes "b" is forbidden: node "a" is not allowed to modify node "b"`},
		{"register with kubelet labels", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: nodesR, Obj: nodeWith(func(n *corev1.Node) {
			n.Labels = map[string]string{corev1.LabelOSStable: "linux", "node.kubernetes.io/exclude-from-external-load-balancers": "", "example.com/x": "y"}
		})}, ""},
		{"register as control plane", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: nodesR, Obj: nodeWith(func(n *corev1.Node) {
			n.Labels = map[string]string{"node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/secure": "y", corev1.LabelOSStable: "linux"}
		})}, `nodes "a" is forbidden: node "a" is not allowed to set the following labels: node-restriction.kubernetes.io/secure, node-role.kubernetes.io/control-plane`},
		{"remove a restricted label", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: nodesR, Name: "a", Obj: nodeA,
			Old: nodeWith(func(n *corev1.Node) { n.Labels["foo.k8s.io/bar"] = "1" })},
			`nodes "a" is forbidden: is not allowed to modify labels: foo.k8s.io/bar`},
		{"drop own taints", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: nodesR, Name: "a", Obj: nodeA,
			Old: nodeWith(func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}
			})},
			`nodes "a" is forbidden: node "a" is not allowed to modify taints`},

		{"own pod status", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsR, Sub: "status", Namespace: "team", Name: "mine", Obj: pod("mine", "a"), Old: pod("mine", "a")}, ""},
		{"other pod status", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsR, Sub: "status", Namespace: "team", Name: "theirs", Obj: pod("theirs", "b"), Old: pod("theirs", "b")},
			`pods "theirs" is forbidden: node "a" can only update pod status for pods with spec.nodeName set to itself`},
		{"relabel through status", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsR, Sub: "status", Namespace: "team", Name: "mine", Obj: relabelled, Old: pod("mine", "a")},
			`pods "mine" is forbidden: node "a" cannot update labels through pod status`},
		{"update a pod", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsR, Namespace: "team", Name: "mine", Obj: pod("mine", "a"), Old: pod("mine", "a")},
			`pods "mine" is forbidden: unexpected operation "UPDATE", node "a" can only create and delete mirror pods`},
		{"delete own pod", a, apiserver.AdmissionRequest{Operation: apiserver.Delete, Resource: podsR, Namespace: "team", Name: "mine", Old: pod("mine", "a")}, ""},
		{"delete other pod", a, apiserver.AdmissionRequest{Operation: apiserver.Delete, Resource: podsR, Namespace: "team", Name: "theirs", Old: pod("theirs", "b")},
			`pods "theirs" is forbidden: node "a" can only delete pods with spec.nodeName set to itself`},
		{"evict own pod", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Sub: "eviction", Namespace: "team", Name: "mine", Obj: &policyv1.Eviction{}}, ""},
		{"evict other pod", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Sub: "eviction", Namespace: "team", Name: "theirs", Obj: &policyv1.Eviction{}},
			`pods "theirs" is forbidden: node a can only evict pods with spec.nodeName set to itself`},
		{"exec", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Sub: "exec", Namespace: "team", Name: "mine"},
			`pods "mine" is forbidden: unexpected pod subresource "exec", only 'status' and 'eviction' are allowed`},
		{"mirror pod", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Namespace: "team", Obj: mirror(nil)}, ""},
		{"plain pod", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Namespace: "team", Obj: pod("p", "a")},
			`pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods`},
		{"mirror pod elsewhere", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Namespace: "team", Obj: mirror(func(p *corev1.Pod) { p.Spec.NodeName = "b" })},
			`pods "static" is forbidden: node "a" can only create pods with spec.nodeName set to itself`},
		{"mirror pod of a stale node", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Namespace: "team", Obj: mirror(func(p *corev1.Pod) { p.OwnerReferences[0].UID = types.UID("old") })},
			`pods "static" is forbidden: node a UID mismatch, expected old got uid-a`},
		{"mirror pod with a secret", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Namespace: "team", Obj: mirror(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x"}}}}
		})}, `pods "static" is forbidden: node "a" can not create pods that reference secrets`},
		{"mirror pod with an account", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsR, Namespace: "team", Obj: mirror(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" })},
			`pods "static" is forbidden: node "a" can not create pods that reference a service account`},

		{"own lease", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: leasesR, Namespace: "kube-node-lease", Obj: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}, ""},
		{"other lease", a, apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: leasesR, Namespace: "kube-node-lease", Obj: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "b"}}},
			`leases.coordination.k8s.io "b" is forbidden: can only access node lease with the same name as the requesting node`},
		{"lease elsewhere", a, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: leasesR, Namespace: "kube-system", Name: "a", Obj: &coordinationv1.Lease{}},
			`leases.coordination.k8s.io "a" is forbidden: can only access leases in the "kube-node-lease" system namespace`},

		{"not a node", &apiserver.User{Name: "system:node:a"}, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: nodesR, Name: "b", Obj: nodeA, Old: nodeA}, ""},
		{"unnamed node", &apiserver.User{Name: "system:node:", Groups: []string{"system:nodes"}}, apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: nodesR, Name: "b", Obj: nodeA, Old: nodeA},
			`nodes "b" is forbidden: could not determine node from user "system:node:"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			err := p.Admit(apiserver.WithUser(context.Background(), c.user), &req)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || err.Error() != c.want || !apierrors.IsForbidden(err)):
				t.Fatalf("got %v, want 403 %q", err, c.want)
			}
		})
	}
}
