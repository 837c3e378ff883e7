package scheduler

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
)

// testBinder builds a volumeBinder over claims, volumes and classes as the
// informers would hold them.
func testBinder(t testing.TB, objs ...runtime.Object) *volumeBinder {
	t.Helper()
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	pvs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{pvClassIndex: pvClassIndexFunc})
	classes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, obj := range objs {
		var err error
		switch obj.(type) {
		case *v1.PersistentVolumeClaim:
			err = claims.Add(obj)
		case *v1.PersistentVolume:
			err = pvs.Add(obj)
		case *storagev1.StorageClass:
			err = classes.Add(obj)
		default:
			t.Fatalf("testBinder: unexpected %T", obj)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return newVolumeBinder(corelisters.NewPersistentVolumeClaimLister(claims), pvs, storagelisters.NewStorageClassLister(classes))
}

func withClaims(names ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "vol-" + n,
				VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: n}}})
		}
	}
}

func withEphemeral(name string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: name,
			VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}})
	}
}

// testClaim is an unbound ReadWriteOnce claim for 1Gi in class ("" for
// none).
func testClaim(name, class string, mods ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "10"},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if class != "" {
		c.Spec.StorageClassName = &class
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// boundTo marks a claim bound to volume pv, as the volume controller does.
func boundTo(pv string) func(*v1.PersistentVolumeClaim) {
	return func(c *v1.PersistentVolumeClaim) {
		c.Spec.VolumeName = pv
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, annBindCompleted, "yes")
		c.Status.Phase = v1.ClaimBound
	}
}

func claimAccess(modes ...v1.PersistentVolumeAccessMode) func(*v1.PersistentVolumeClaim) {
	return func(c *v1.PersistentVolumeClaim) { c.Spec.AccessModes = modes }
}

func claimSize(q string) func(*v1.PersistentVolumeClaim) {
	return func(c *v1.PersistentVolumeClaim) {
		c.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse(q)
	}
}

// testPV is an Available ReadWriteOnce volume of size in class.
func testPV(name, class, size string, mods ...func(*v1.PersistentVolume)) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "10"},
		Spec: v1.PersistentVolumeSpec{
			StorageClassName: class,
			Capacity:         v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)},
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: "/data/" + name},
			},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable},
	}
	for _, m := range mods {
		m(pv)
	}
	return pv
}

// pvOn gives a volume node affinity: label key in values.
func pvOn(key string, values ...string) func(*v1.PersistentVolume) {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: v1.NodeSelectorOpIn, Values: values}},
		}}}}
	}
}

func testClass(name string, mode storagev1.VolumeBindingMode, provisioner string, mods ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	c := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
	for _, m := range mods {
		m(c)
	}
	return c
}

const wffc = storagev1.VolumeBindingWaitForFirstConsumer

func TestVolumePreFilter(t *testing.T) {
	now := metav1.Now()
	pod := func(mods ...func(*v1.Pod)) *v1.Pod { return testPod("p", "", "", mods...) }
	owned := func(c *v1.PersistentVolumeClaim) {
		yes := true
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "p", UID: "uid-p", Controller: &yes}}
	}
	tests := []struct {
		name          string
		pod           *v1.Pod
		objs          []runtime.Object
		want          string
		bound         int
		unbound       int
		rwop          []string
		wantUnchanged bool
	}{
		{name: "no claims", pod: pod()},
		{name: "claim missing", pod: pod(withClaims("data")), want: `persistentvolumeclaim "data" not found`},
		{name: "claim being deleted", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "", func(c *v1.PersistentVolumeClaim) { c.DeletionTimestamp = &now })},
			want: `persistentvolumeclaim "data" is being deleted`},
		{name: "claim lost", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "", func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName, c.Status.Phase = "pv1", v1.ClaimLost })},
			want: `persistentvolumeclaim "data" bound to non-existent persistentvolume "pv1"`},
		{name: "second claim missing", pod: pod(withClaims("data", "logs")),
			objs: []runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi")},
			want: `persistentvolumeclaim "logs" not found`},
		{name: "unbound without class", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "")}, want: msgUnboundImmediate},
		{name: "unbound with an Immediate class", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "std"), testClass("std", storagev1.VolumeBindingImmediate, "example.com/std")},
			want: msgUnboundImmediate},
		{name: "unbound with a class that does not exist", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "gone")}, want: msgUnboundImmediate},
		{name: "class named by the beta annotation", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "", func(c *v1.PersistentVolumeClaim) {
				metav1.SetMetaDataAnnotation(&c.ObjectMeta, v1.BetaStorageClassAnnotation, "local")
			}), testClass("local", wffc, "")},
			unbound: 1},
		{name: "volumeName set but binding not completed", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "", func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv1" })},
			want: msgUnboundImmediate},
		{name: "pre-bound WaitForFirstConsumer claim is Immediate", pod: pod(withClaims("data")),
			objs: []runtime.Object{testClaim("data", "local", func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv1" }), testClass("local", wffc, "")},
			want: msgUnboundImmediate},
		{name: "WaitForFirstConsumer", pod: pod(withClaims("data")),
			objs:    []runtime.Object{testClaim("data", "local"), testClass("local", wffc, "")},
			unbound: 1},
		{name: "bound", pod: pod(withClaims("data")),
			objs:  []runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi")},
			bound: 1},
		{name: "the same claim twice counts once", pod: pod(withClaims("data", "data")),
			objs:  []runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi")},
			bound: 1},
		{name: "ReadWriteOncePod", pod: pod(withClaims("data")),
			objs:  []runtime.Object{testClaim("data", "", boundTo("pv1"), claimAccess(v1.ReadWriteOncePod)), testPV("pv1", "", "1Gi")},
			bound: 1, rwop: []string{"default/data"}},
		{name: "ephemeral claim not created yet", pod: pod(withEphemeral("scratch")),
			want: `waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"`},
		{name: "ephemeral claim of another pod", pod: pod(withEphemeral("scratch")),
			objs: []runtime.Object{testClaim("p-scratch", "", boundTo("pv1"))},
			want: "PVC default/p-scratch was not created for pod default/p (pod is not owner)"},
		{name: "ephemeral claim", pod: pod(withEphemeral("scratch")),
			objs:    []runtime.Object{testClaim("p-scratch", "local", owned), testClass("local", wffc, "example.com/local")},
			unbound: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPodInfo(tt.pod)
			if p.claims == nil {
				if tt.want != "" || tt.bound+tt.unbound > 0 {
					t.Fatal("pod with claims not recognised")
				}
				return
			}
			st := testBinder(t, tt.objs...).podState(p)
			if st.unschedulable != tt.want {
				t.Errorf("unschedulable = %q, want %q", st.unschedulable, tt.want)
			}
			if tt.want != "" {
				return
			}
			if len(st.bound) != tt.bound || len(st.unbound) != tt.unbound {
				t.Errorf("bound %d unbound %d, want %d %d", len(st.bound), len(st.unbound), tt.bound, tt.unbound)
			}
			if diff := cmp.Diff(tt.rwop, st.rwop); diff != "" {
				t.Errorf("rwop (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVolumeFilter checks VolumeBinding's Filter on nodes n1 (zone a) and
// n2 (zone b).
func TestVolumeFilter(t *testing.T) {
	nodes := []*v1.Node{testNode("n1", "4", "8Gi", nodeLabels("zone", "a")), testNode("n2", "4", "8Gi", nodeLabels("zone", "b"))}
	local := testClass("local", wffc, "kubernetes.io/no-provisioner")
	dynamic := testClass("fast", wffc, "example.com/fast")
	zoneA := testClass("fast", wffc, "example.com/fast", func(c *storagev1.StorageClass) {
		c.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: "zone", Values: []string{"a"}}}}}
	})
	block := v1.PersistentVolumeBlock
	now := metav1.Now()
	ok := map[string]*status{"n1": nil, "n2": nil}
	onlyN1 := func(st *status) map[string]*status { return map[string]*status{"n1": nil, "n2": st} }
	none := func(st *status) map[string]*status { return map[string]*status{"n1": st, "n2": st} }
	tests := []struct {
		name   string
		claims []string
		objs   []runtime.Object
		want   map[string]*status
	}{
		{"bound volume without affinity", []string{"data"},
			[]runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi")}, ok},
		{"bound volume with affinity", []string{"data"},
			[]runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi", pvOn("zone", "a"))},
			onlyN1(statusVolumeNodeConflict)},
		{"bound volume that does not exist", []string{"data"},
			[]runtime.Object{testClaim("data", "", boundTo("pv1"))}, none(statusPVNotExist)},
		{"bound volume with an empty affinity", []string{"data"},
			[]runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi", func(pv *v1.PersistentVolume) {
				pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{}}
			})}, none(statusVolumeNodeConflict)},
		{"static volume", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "1Gi", pvOn("zone", "a"))},
			onlyN1(statusVolumeBindConflict)},
		{"static volume larger than asked", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "10Gi")}, ok},
		{"static volume too small", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "500Mi")}, none(statusVolumeBindConflict)},
		{"static volume of another class", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "other", "1Gi")}, none(statusVolumeBindConflict)},
		{"static volume without the access mode", []string{"data"},
			[]runtime.Object{testClaim("data", "local", claimAccess(v1.ReadWriteMany)), local, testPV("pv1", "local", "1Gi")},
			none(statusVolumeBindConflict)},
		{"static volume of another volume mode", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "1Gi", func(pv *v1.PersistentVolume) { pv.Spec.VolumeMode = &block })},
			none(statusVolumeBindConflict)},
		{"static volume not matching the selector", []string{"data"},
			[]runtime.Object{testClaim("data", "local", func(c *v1.PersistentVolumeClaim) {
				c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "ssd"}}
			}), local, testPV("pv1", "local", "1Gi"), testPV("pv2", "local", "1Gi", pvOn("zone", "b"), func(pv *v1.PersistentVolume) {
				pv.Labels = map[string]string{"tier": "ssd"}
			})},
			map[string]*status{"n1": statusVolumeBindConflict, "n2": nil}},
		{"static volume not Available", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "1Gi", func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumePending })},
			none(statusVolumeBindConflict)},
		{"static volume being deleted", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "1Gi", func(pv *v1.PersistentVolume) { pv.DeletionTimestamp = &now })},
			none(statusVolumeBindConflict)},
		{"static volume taken by another claim", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "1Gi", func(pv *v1.PersistentVolume) {
				pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "default", Name: "other"}
			})}, none(statusVolumeBindConflict)},
		{"volume pre-bound to the claim wins, on its nodes only", []string{"data"},
			[]runtime.Object{testClaim("data", "local"), local, testPV("pv1", "local", "1Gi"),
				testPV("pv2", "local", "1Gi", pvOn("zone", "b"), func(pv *v1.PersistentVolume) {
					pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "default", Name: "data"}
					pv.Status.Phase = v1.VolumePending // not checked for a pre-bound volume
				})},
			map[string]*status{"n1": statusVolumeBindConflict, "n2": nil}},
		{"one volume for two claims", []string{"data", "logs"},
			[]runtime.Object{testClaim("data", "local"), testClaim("logs", "local"), local, testPV("pv1", "local", "1Gi")},
			none(statusVolumeBindConflict)},
		{"two volumes for two claims", []string{"data", "logs"},
			[]runtime.Object{testClaim("data", "local"), testClaim("logs", "local"), local, testPV("pv1", "local", "1Gi"), testPV("pv2", "local", "1Gi", pvOn("zone", "a"))},
			onlyN1(statusVolumeBindConflict)},
		{"dynamic provisioning", []string{"data"},
			[]runtime.Object{testClaim("data", "fast"), dynamic}, ok},
		{"dynamic provisioning in allowed topologies", []string{"data"},
			[]runtime.Object{testClaim("data", "fast"), zoneA}, onlyN1(statusVolumeBindConflict)},
		{"static volume, else provisioning", []string{"data"},
			[]runtime.Object{testClaim("data", "fast"), zoneA, testPV("pv1", "fast", "1Gi", pvOn("zone", "b"))}, ok},
		{"provisioning asked for a node", []string{"data"},
			[]runtime.Object{testClaim("data", "fast", func(c *v1.PersistentVolumeClaim) {
				metav1.SetMetaDataAnnotation(&c.ObjectMeta, annSelectedNode, "n2")
			}), dynamic}, map[string]*status{"n1": statusVolumeBindConflict, "n2": nil}},
		{"node conflict and no volume to bind", []string{"data", "logs"},
			[]runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi", pvOn("zone", "c")), testClaim("logs", "local"), local},
			none(&status{reasons: []string{reasonVolumeNodeConflict, reasonVolumeBindConflict}, unresolvable: true})},
		{"missing volume and no volume to bind", []string{"data", "logs"},
			[]runtime.Object{testClaim("data", "", boundTo("pv1")), testClaim("logs", "local"), local},
			none(&status{reasons: []string{reasonVolumeBindConflict, reasonPVNotExist}, unresolvable: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPodInfo(testPod("p", "", "", withClaims(tt.claims...)))
			p.claims.volumes = testBinder(t, tt.objs...).podState(p)
			if p.claims.volumes.unschedulable != "" {
				t.Fatalf("PreFilter: %s", p.claims.volumes.unschedulable)
			}
			c := testCache(nodes)
			d := newAlgorithm(c, 0).newDecision(p)
			got := map[string]*status{}
			for _, n := range c.list {
				got[n.name] = d.filter(n)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(status{})); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVolumePlanAndAssume follows two pods through decide and assume: the
// first takes the smallest fitting volume, which the second then cannot
// take until the assumption is reverted; an informer object newer than
// the assumed one replaces it.
func TestVolumePlanAndAssume(t *testing.T) {
	local := testClass("local", wffc, "kubernetes.io/no-provisioner")
	b := testBinder(t, local, testClaim("a", "local"), testClaim("b", "local"),
		testPV("big", "local", "10Gi"), testPV("small", "local", "2Gi"), testPV("elsewhere", "local", "1Gi", pvOn("zone", "b")))
	c := testCache([]*v1.Node{testNode("n1", "4", "8Gi", nodeLabels("zone", "a"))})
	n := c.nodes["n1"]

	pa := newPodInfo(testPod("pa", "", "", withClaims("a")))
	pa.claims.volumes = b.podState(pa)
	plan := pa.claims.volumes.plan(n)
	if len(plan.static) != 1 || plan.static[0].pv.Name != "small" || len(plan.provision) != 0 {
		t.Fatalf("plan: %+v", plan)
	}
	b.assume(plan, "n1")
	sb := plan.static[0]
	if !sb.written || sb.pv.Spec.ClaimRef == nil || sb.pv.Spec.ClaimRef.Name != "a" || sb.pv.Spec.ClaimRef.UID != "uid-a" ||
		sb.pv.Annotations[annBoundByController] != "yes" {
		t.Fatalf("assumed volume: written %v claimRef %+v annotations %v", sb.written, sb.pv.Spec.ClaimRef, sb.pv.Annotations)
	}

	pb := newPodInfo(testPod("pb", "", "", withClaims("b")))
	pb.claims.volumes = b.podState(pb)
	if got := pb.claims.volumes.plan(n).static; len(got) != 1 || got[0].pv.Name != "big" {
		t.Fatalf("second pod's volume: %+v, want big (small is assumed)", got)
	}
	// A pod sharing claim a sees the volume pre-bound to it.
	pa2 := newPodInfo(testPod("pa2", "", "", withClaims("a")))
	pa2.claims.volumes = b.podState(pa2)
	if got := pa2.claims.volumes.plan(n).static; len(got) != 1 || got[0].pv.Name != "small" {
		t.Fatalf("pod sharing the claim: %+v, want small", got)
	}

	// The informer reports the same version (a resync): still assumed.
	b.setPV("small", testPV("small", "local", "2Gi"))
	if b.assumedPVs["small"] == nil {
		t.Fatal("a resync replaced the assumed volume")
	}
	b.revert(plan)
	pb.claims.volumes = b.podState(pb)
	if got := pb.claims.volumes.plan(n).static; len(got) != 1 || got[0].pv.Name != "small" {
		t.Fatalf("after revert: %+v, want small", got)
	}

	b.assume(plan, "n1")
	b.setPV("small", testPV("small", "local", "2Gi", func(pv *v1.PersistentVolume) { pv.ResourceVersion = "11" }))
	if b.assumedPVs["small"] != nil {
		t.Fatal("a newer object did not replace the assumed volume")
	}
}

func TestVolumeAssumeProvisioning(t *testing.T) {
	b := testBinder(t, testClass("fast", wffc, "example.com/fast"), testClaim("data", "fast"))
	c := testCache([]*v1.Node{testNode("n1", "4", "8Gi"), testNode("n2", "4", "8Gi")})
	p := newPodInfo(testPod("p", "", "", withClaims("data")))
	p.claims.volumes = b.podState(p)
	plan := p.claims.volumes.plan(c.nodes["n2"])
	if len(plan.provision) != 1 {
		t.Fatalf("plan: %+v", plan)
	}
	b.assume(plan, "n2")
	if pr := plan.provision[0]; !pr.written || pr.claim.Annotations[annSelectedNode] != "n2" {
		t.Fatalf("assumed claim: written %v annotations %v", pr.written, pr.claim.Annotations)
	}
	// Another pod of the claim may now only go to n2.
	q := newPodInfo(testPod("q", "", "", withClaims("data")))
	q.claims.volumes = b.podState(q)
	d := newAlgorithm(c, 0).newDecision(q)
	if st := d.filter(c.nodes["n1"]); st != statusVolumeBindConflict {
		t.Errorf("n1: %v, want the bind conflict", st)
	}
	if st := d.filter(c.nodes["n2"]); st != nil {
		t.Errorf("n2: %v", st.reasons)
	}
	b.setClaim("default/data", nil)
	if len(b.assumedClaims) != 0 {
		t.Error("a deleted claim stayed assumed")
	}
}

// TestVolumeScheduleMessages checks the whole decision's message, as
// upstream's FitError renders a PreFilter or a Filter verdict.
func TestVolumeScheduleMessages(t *testing.T) {
	nodes := []*v1.Node{testNode("n1", "4", "8Gi", nodeLabels("zone", "a")), testNode("n2", "4", "8Gi", nodeLabels("zone", "b"))}
	tests := []struct {
		name string
		objs []runtime.Object
		want string
	}{
		{"claim not found", nil,
			`0/2 nodes are available: persistentvolumeclaim "data" not found.`},
		{"unbound immediate", []runtime.Object{testClaim("data", "")},
			"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{"volume node affinity", []runtime.Object{testClaim("data", "", boundTo("pv1")), testPV("pv1", "", "1Gi", pvOn("zone", "c"))},
			"0/2 nodes are available: 2 node(s) had volume node affinity conflict."},
		{"no volume to bind", []runtime.Object{testClaim("data", "local"), testClass("local", wffc, "kubernetes.io/no-provisioner")},
			"0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCache(nodes)
			a := newAlgorithm(c, 0)
			p := newPodInfo(testPod("p", "", "", withClaims("data")))
			p.claims.volumes = testBinder(t, tt.objs...).podState(p)
			n, fe := a.schedule(p)
			if n != nil {
				t.Fatalf("scheduled to %s", n.name)
			}
			if got := fe.Error(); got != tt.want {
				t.Errorf("message %q, want %q", got, tt.want)
			}
			// Every node failed beyond preemption's help.
			pre, msg := a.preempt(p, fe)
			if want := "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."; pre != nil || msg != want {
				t.Errorf("preemption %v %q, want %q", pre, msg, want)
			}
		})
	}
}

func TestReadWriteOncePod(t *testing.T) {
	nodes := []*v1.Node{testNode("n1", "4", "8Gi"), testNode("n2", "4", "8Gi")}
	objs := []runtime.Object{testClaim("data", "", boundTo("pv1"), claimAccess(v1.ReadWriteOncePod)), testPV("pv1", "", "1Gi"),
		testClaim("shared", "", boundTo("pv2")), testPV("pv2", "", "1Gi")}
	user := testPod("user", "", "", onNode("n1"), withClaims("data"), withPriority(10))
	c := testCache(nodes, user, testPod("other", "", "", onNode("n2"), withClaims("shared")))
	a := newAlgorithm(c, 0)
	b := testBinder(t, objs...)

	p := newPodInfo(testPod("p", "", "", withClaims("data"), withPriority(100)))
	p.claims.volumes = b.podState(p)
	n, fe := a.schedule(p)
	if n != nil {
		t.Fatalf("scheduled to %s while the claim is in use", n.name)
	}
	want := "0/2 nodes are available: 2 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode."
	if got := fe.Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	// Preempting the lower-priority user frees the claim on its node only.
	pre, msg := a.preempt(p, fe)
	if pre == nil || pre.node.name != "n1" || len(pre.victims) != 1 || pre.victims[0].key != "default/user" {
		t.Fatalf("preemption %+v %q, want the user on n1", pre, msg)
	}

	// A claim without ReadWriteOncePod is shared.
	q := newPodInfo(testPod("q", "", "", withClaims("shared")))
	q.claims.volumes = b.podState(q)
	if n, fe := a.schedule(q); n == nil {
		t.Errorf("pod of a shared claim: %v", fe)
	}

	// Once the user is gone (deleted, or terminated), the claim is free.
	c.RemovePod("default/user")
	if n, fe := a.schedule(p); n == nil {
		t.Errorf("claim still in use after its pod went: %v", fe)
	}
	if len(c.claimUsers["default/data"]) != 0 {
		t.Errorf("claim index keeps a removed pod")
	}
}

// TestPlanBound checks when PreBind's wait ends, from the informers'
// claims and volumes.
func TestPlanBound(t *testing.T) {
	node := testNode("n1", "4", "8Gi", nodeLabels("zone", "a"))
	claimRef := func(pv *v1.PersistentVolume) {
		pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "default", Name: "data", UID: "uid-data"}
	}
	selected := func(node string) func(*v1.PersistentVolumeClaim) {
		return func(c *v1.PersistentVolumeClaim) { metav1.SetMetaDataAnnotation(&c.ObjectMeta, annSelectedNode, node) }
	}
	static := func(pv *v1.PersistentVolume) *volumePlan {
		return &volumePlan{static: []staticBinding{{pv: pv, claim: testClaim("data", "local"), written: true}}}
	}
	provision := &volumePlan{provision: []*provisioning{{claim: testClaim("data", "fast", selected("n1")), written: true}}}
	tests := []struct {
		name    string
		plan    *volumePlan
		objs    []runtime.Object
		want    bool
		wantErr string
	}{
		{"volume pre-bound, claim not yet bound", static(testPV("pv1", "local", "1Gi", claimRef)),
			[]runtime.Object{testPV("pv1", "local", "1Gi", claimRef), testClaim("data", "local")}, false, ""},
		{"our write not seen yet", static(testPV("pv1", "local", "1Gi", claimRef, func(pv *v1.PersistentVolume) { pv.ResourceVersion = "12" })),
			[]runtime.Object{testPV("pv1", "local", "1Gi"), testClaim("data", "local", boundTo("pv1"))}, false, ""},
		{"claim bound", static(testPV("pv1", "local", "1Gi", claimRef)),
			[]runtime.Object{testPV("pv1", "local", "1Gi", claimRef), testClaim("data", "local", boundTo("pv1"))}, true, ""},
		{"claimRef reset", static(testPV("pv1", "local", "1Gi", claimRef)),
			[]runtime.Object{testPV("pv1", "local", "1Gi"), testClaim("data", "local")}, false, `ClaimRef got reset for pv "pv1"`},
		{"volume gone", static(testPV("pv1", "local", "1Gi", claimRef)),
			[]runtime.Object{testClaim("data", "local")}, false, `failed to check binding: persistentvolume "pv1" not found`},
		{"provisioning pending", provision,
			[]runtime.Object{testClaim("data", "fast", selected("n1"))}, false, ""},
		{"provisioned and bound", provision,
			[]runtime.Object{testClaim("data", "fast", selected("n1"), boundTo("pv9")), testPV("pv9", "fast", "1Gi", pvOn("zone", "a"))}, true, ""},
		{"provisioned on the wrong node", provision,
			[]runtime.Object{testClaim("data", "fast", selected("n1"), boundTo("pv9")), testPV("pv9", "fast", "1Gi", pvOn("zone", "b"))},
			false, `pv "pv9" node affinity doesn't match node "n1": no matching NodeSelectorTerms`},
		{"provisioning failed", provision,
			[]runtime.Object{testClaim("data", "fast", func(c *v1.PersistentVolumeClaim) { c.Annotations = map[string]string{"x": "y"} })},
			false, `provisioning failed for PVC "data"`},
		{"claim gone", provision, nil, false, `failed to check provisioning pvc: persistentvolumeclaim "data" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testBinder(t, tt.objs...).planBound(tt.plan, node)
			if got != tt.want || fmt.Sprint(err) != fmt.Sprint(errOrNil(tt.wantErr)) {
				t.Errorf("planBound = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func errOrNil(msg string) error {
	if msg == "" {
		return nil
	}
	return fmt.Errorf("%s", msg)
}
