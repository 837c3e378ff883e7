package persistentvolume_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/persistentvolume"
)

const (
	ns          = "default"
	timeout     = 10 * time.Second
	syncPeriod  = 100 * time.Millisecond
	provisioner = "skiff.io/local-path"
)

// harness runs the binder over a fake clientset.
type harness struct {
	t      *testing.T
	client *fake.Clientset

	rec    *record.FakeRecorder
	mu     sync.Mutex
	events []string
}

func start(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	return run(t, newFakeServer(objs...), syncPeriod)
}

// run runs the binder over client until the test ends; t.Cleanup stops it
// and waits for Start to return.
func run(t *testing.T, client *fake.Clientset, period time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, client: client, rec: record.NewFakeRecorder(10000)}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := persistentvolume.New(client, factory, h.rec, persistentvolume.Options{SyncPeriod: period})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
		factory.Shutdown()
	})
	return h
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("condition not met within %v", timeout)
	}
}

func (h *harness) ctx() context.Context { return h.t.Context() }

// waitEvent waits for an event of the form "<type> <reason> <message>"
// that starts with want.
func (h *harness) waitEvent(want string) {
	h.t.Helper()
	eventually(h.t, func() bool { return h.sawEvent(want) })
}

func (h *harness) sawEvent(prefix string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		select {
		case e := <-h.rec.Events:
			h.events = append(h.events, e)
			continue
		default:
		}
		break
	}
	for _, e := range h.events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func (h *harness) claim(name string) *corev1.PersistentVolumeClaim {
	h.t.Helper()
	c, err := h.client.CoreV1().PersistentVolumeClaims(ns).Get(h.ctx(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("claim %s: %v", name, err)
	}
	return c
}

func (h *harness) volume(name string) *corev1.PersistentVolume {
	h.t.Helper()
	v, err := h.client.CoreV1().PersistentVolumes().Get(h.ctx(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("volume %s: %v", name, err)
	}
	return v
}

func (h *harness) waitClaim(name string, cond func(*corev1.PersistentVolumeClaim) bool) *corev1.PersistentVolumeClaim {
	h.t.Helper()
	var c *corev1.PersistentVolumeClaim
	eventually(h.t, func() bool {
		c = h.claim(name)
		return cond(c)
	})
	return c
}

func (h *harness) waitVolume(name string, cond func(*corev1.PersistentVolume) bool) *corev1.PersistentVolume {
	h.t.Helper()
	var v *corev1.PersistentVolume
	eventually(h.t, func() bool {
		v = h.volume(name)
		return cond(v)
	})
	return v
}

func (h *harness) create(obj runtime.Object) {
	h.t.Helper()
	var err error
	switch o := obj.(type) {
	case *corev1.PersistentVolume:
		_, err = h.client.CoreV1().PersistentVolumes().Create(h.ctx(), o, metav1.CreateOptions{})
	case *corev1.PersistentVolumeClaim:
		_, err = h.client.CoreV1().PersistentVolumeClaims(o.Namespace).Create(h.ctx(), o, metav1.CreateOptions{})
	case *corev1.Pod:
		_, err = h.client.CoreV1().Pods(o.Namespace).Create(h.ctx(), o, metav1.CreateOptions{})
	case *storagev1.StorageClass:
		_, err = h.client.StorageV1().StorageClasses().Create(h.ctx(), o, metav1.CreateOptions{})
	default:
		h.t.Fatalf("create %T", obj)
	}
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
}

// writes counts the create, update, patch and delete calls made so far.
func (h *harness) writes() int {
	n := 0
	for _, a := range h.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
			n++
		}
	}
	return n
}

// quiet checks that nothing is written for d (several resyncs): a
// converged binder must not write on every sync.
func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	before := h.writes()
	deadline := time.Now().Add(d)
	eventually(h.t, func() bool {
		if n := h.writes(); n != before {
			h.t.Fatalf("%d writes after the binder converged: %v", n-before, h.client.Actions()[before:])
		}
		return time.Now().After(deadline)
	})
}

func pv(name, size string, opts ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("pv-" + name)},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/" + name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumePending},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func pvc(name, size string, opts ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("pvc-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func class(name, provisioner string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(mode),
	}
}

func ofClass(name string) func(*corev1.PersistentVolumeClaim) {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To(name) }
}

func reclaim(p corev1.PersistentVolumeReclaimPolicy) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Spec.PersistentVolumeReclaimPolicy = p }
}

func preBoundTo(c *corev1.PersistentVolumeClaim, withUID bool) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name}
		if withUID {
			v.Spec.ClaimRef.UID = c.UID
		}
	}
}

func claimBound(c *corev1.PersistentVolumeClaim) bool { return c.Status.Phase == corev1.ClaimBound }
func volumePhase(p corev1.PersistentVolumePhase) func(*corev1.PersistentVolume) bool {
	return func(v *corev1.PersistentVolume) bool { return v.Status.Phase == p }
}

// checkBound checks both sides of a binding the binder made.
func checkBound(t *testing.T, v *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim, volumeChosen, claimChosen bool) {
	t.Helper()
	if v.Spec.ClaimRef == nil || v.Spec.ClaimRef.Namespace != c.Namespace || v.Spec.ClaimRef.Name != c.Name || v.Spec.ClaimRef.UID != c.UID {
		t.Errorf("volume %s claimRef %+v, want %s/%s uid %s", v.Name, v.Spec.ClaimRef, c.Namespace, c.Name, c.UID)
	}
	if v.Status.Phase != corev1.VolumeBound {
		t.Errorf("volume phase %s, want Bound", v.Status.Phase)
	}
	if got := metav1.HasAnnotation(v.ObjectMeta, storagehelpers.AnnBoundByController); got != volumeChosen {
		t.Errorf("volume bound-by-controller %v, want %v", got, volumeChosen)
	}
	if c.Spec.VolumeName != v.Name {
		t.Errorf("claim volumeName %q, want %q", c.Spec.VolumeName, v.Name)
	}
	if !metav1.HasAnnotation(c.ObjectMeta, storagehelpers.AnnBindCompleted) {
		t.Error("claim lacks bind-completed")
	}
	if got := metav1.HasAnnotation(c.ObjectMeta, storagehelpers.AnnBoundByController); got != claimChosen {
		t.Errorf("claim bound-by-controller %v, want %v", got, claimChosen)
	}
	if c.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim phase %s, want Bound", c.Status.Phase)
	}
	if diff := cmp.Diff(v.Spec.AccessModes, c.Status.AccessModes); diff != "" {
		t.Errorf("claim status access modes (-volume +claim):\n%s", diff)
	}
	want, got := v.Spec.Capacity[corev1.ResourceStorage], c.Status.Capacity[corev1.ResourceStorage]
	if want.Cmp(got) != 0 {
		t.Errorf("claim status capacity %s, want the volume's %s", got.String(), want.String())
	}
}

func TestBindsSmallestMatchingVolume(t *testing.T) {
	h := start(t, pv("big", "10Gi"), pv("fit", "5Gi"), pv("small", "1Gi"))
	// As upstream, the binder matches only Available volumes: a claim
	// synced while "fit" is still Pending would rightly get "big".
	for _, name := range []string{"big", "fit", "small"} {
		h.waitVolume(name, volumePhase(corev1.VolumeAvailable))
	}
	h.create(pvc("data", "3Gi"))

	c := h.waitClaim("data", claimBound)
	checkBound(t, h.volume("fit"), c, true, true)
	for _, name := range []string{"big", "small"} {
		if v := h.waitVolume(name, volumePhase(corev1.VolumeAvailable)); v.Spec.ClaimRef != nil {
			t.Errorf("volume %s claimed by %+v", name, v.Spec.ClaimRef)
		}
	}
	h.quiet(5 * syncPeriod)
}

func TestNoVolumeNoClass(t *testing.T) {
	h := start(t, pv("small", "1Gi"), pvc("data", "3Gi"))
	h.waitEvent("Normal FailedBinding no persistent volumes available for this claim and no storage class is set")
	if c := h.claim("data"); c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" {
		t.Fatalf("claim %s bound to %q, want Pending and unbound", c.Status.Phase, c.Spec.VolumeName)
	}
	// A volume that fits, added later, is found by the resync.
	h.create(pv("later", "3Gi"))
	c := h.waitClaim("data", claimBound)
	checkBound(t, h.volume("later"), c, true, true)
}

// A volume that becomes Available brings the Pending claims of its class
// back at once, not at the next resync (here an hour away).
func TestVolumeAvailableWakesClaims(t *testing.T) {
	h := run(t, newFakeServer(pvc("data", "3Gi")), time.Hour)
	h.waitEvent("Normal FailedBinding no persistent volumes available for this claim and no storage class is set")
	h.create(pv("later", "3Gi"))
	c := h.waitClaim("data", claimBound)
	checkBound(t, h.volume("later"), c, true, true)
}

func TestPreBoundClaim(t *testing.T) {
	claim := pvc("data", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "chosen" })
	h := start(t, pv("smaller", "1Gi"), pv("chosen", "5Gi"), claim)
	c := h.waitClaim("data", claimBound)
	// The volume was chosen by the user, not the binder: only the
	// volume says bound-by-controller (the binder wrote its claimRef).
	checkBound(t, h.volume("chosen"), c, true, false)
}

func TestPreBoundClaimMismatch(t *testing.T) {
	claim := pvc("data", "5Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "tiny" })
	h := start(t, pv("tiny", "1Gi"), claim)
	h.waitEvent(`Warning VolumeMismatch Cannot bind to requested volume "tiny": requested PV is too small`)
	if c := h.claim("data"); c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim phase %s, want Pending", c.Status.Phase)
	}
	if v := h.volume("tiny"); v.Spec.ClaimRef != nil {
		t.Errorf("volume claimed by %+v", v.Spec.ClaimRef)
	}
}

func TestPreBoundClaimToTakenVolume(t *testing.T) {
	other := pvc("other", "1Gi")
	claim := pvc("data", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "taken" })
	h := start(t, pv("taken", "1Gi", preBoundTo(other, false)), claim)
	h.waitEvent(`Warning FailedBinding volume "taken" already bound to a different claim.`)
	if c := h.claim("data"); c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim phase %s, want Pending", c.Status.Phase)
	}
}

func TestPreBoundVolume(t *testing.T) {
	claim := pvc("data", "1Gi")
	// The smaller volume would win were the other not reserved for it.
	h := start(t, pv("small", "1Gi"), pv("reserved", "5Gi", preBoundTo(claim, false)), claim)
	c := h.waitClaim("data", claimBound)
	// The user reserved the volume: only the claim says
	// bound-by-controller (the binder set its volumeName).
	checkBound(t, h.volume("reserved"), c, false, true)
	if v := h.volume("small"); v.Spec.ClaimRef != nil {
		t.Errorf("volume small claimed by %+v", v.Spec.ClaimRef)
	}
}

func TestPreBoundVolumeWaitsForItsClaim(t *testing.T) {
	absent := pvc("absent", "1Gi")
	h := start(t, pv("reserved", "1Gi", preBoundTo(absent, false)), pvc("data", "1Gi"))
	h.waitEvent("Normal FailedBinding")
	v := h.waitVolume("reserved", volumePhase(corev1.VolumeAvailable))
	if v.Spec.ClaimRef == nil || v.Spec.ClaimRef.Name != "absent" {
		t.Errorf("reservation lost: claimRef %+v", v.Spec.ClaimRef)
	}
	h.create(absent)
	c := h.waitClaim("absent", claimBound)
	checkBound(t, h.volume("reserved"), c, false, true)
}

func TestWaitForFirstConsumer(t *testing.T) {
	claim := pvc("data", "1Gi", ofClass("local"))
	h := start(t, class("local", provisioner, storagev1.VolumeBindingWaitForFirstConsumer),
		pv("fits", "1Gi", func(v *corev1.PersistentVolume) { v.Spec.StorageClassName = "local" }), claim)

	h.waitEvent("Normal WaitForFirstConsumer waiting for first consumer to be created before binding")
	h.waitVolume("fits", volumePhase(corev1.VolumeAvailable))
	if c := h.claim("data"); c.Spec.VolumeName != "" || c.Annotations[storagehelpers.AnnStorageProvisioner] != "" {
		t.Fatalf("claim acted on before its consumer: volumeName %q annotations %v", c.Spec.VolumeName, c.Annotations)
	}

	// A pod uses it, not yet scheduled.
	h.create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
	})
	h.waitEvent("Normal WaitForPodScheduled waiting for pod app to be scheduled")

	// The scheduler picks a node: without a volume bound there, the
	// claim goes to the class's provisioner.
	c := h.claim("data")
	metav1.SetMetaDataAnnotation(&c.ObjectMeta, storagehelpers.AnnSelectedNode, "node-1")
	if _, err := h.client.CoreV1().PersistentVolumeClaims(ns).Update(h.ctx(), c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c = h.waitClaim("data", func(c *corev1.PersistentVolumeClaim) bool {
		return c.Annotations[storagehelpers.AnnStorageProvisioner] == provisioner
	})
	if c.Annotations[storagehelpers.AnnBetaStorageProvisioner] != provisioner {
		t.Errorf("beta provisioner annotation %q", c.Annotations[storagehelpers.AnnBetaStorageProvisioner])
	}

	// Or the scheduler binds the volume it found on the node (it writes
	// the claimRef, as upstream's VolumeBinding plugin): the binder
	// finishes the claim's side.
	v := h.volume("fits")
	v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: "data", UID: claim.UID}
	metav1.SetMetaDataAnnotation(&v.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
	if _, err := h.client.CoreV1().PersistentVolumes().Update(h.ctx(), v, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c = h.waitClaim("data", claimBound)
	checkBound(t, h.volume("fits"), c, true, true)
}

func TestExternalProvisioning(t *testing.T) {
	claim := pvc("data", "2Gi", ofClass("local"))
	h := start(t, class("local", provisioner, storagev1.VolumeBindingImmediate), pv("classless", "5Gi"), claim)

	c := h.waitClaim("data", func(c *corev1.PersistentVolumeClaim) bool {
		return c.Annotations[storagehelpers.AnnStorageProvisioner] == provisioner
	})
	if got := c.Annotations[storagehelpers.AnnBetaStorageProvisioner]; got != provisioner {
		t.Errorf("beta provisioner annotation %q, want %q", got, provisioner)
	}
	h.waitEvent("Normal ExternalProvisioning Waiting for a volume to be created either by the external provisioner 'skiff.io/local-path' " +
		"or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.")
	if c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim phase %s, want Pending", c.Status.Phase)
	}

	// The provisioner creates the volume, pre-bound to the claim.
	h.create(pv("pvc-data", "2Gi", preBoundTo(claim, true), reclaim(corev1.PersistentVolumeReclaimDelete), func(v *corev1.PersistentVolume) {
		v.Spec.StorageClassName = "local"
		v.Annotations = map[string]string{storagehelpers.AnnDynamicallyProvisioned: provisioner, storagehelpers.AnnBoundByController: "yes"}
	}))
	c = h.waitClaim("data", claimBound)
	checkBound(t, h.volume("pvc-data"), c, true, true)
	if v := h.volume("classless"); v.Spec.ClaimRef != nil {
		t.Errorf("classless volume claimed by %+v", v.Spec.ClaimRef)
	}
}

func TestClassNotFound(t *testing.T) {
	h := start(t, pvc("data", "1Gi", ofClass("missing")))
	h.waitEvent(`Warning ProvisioningFailed storageclass.storage.k8s.io "missing" not found`)
	c := h.claim("data")
	if c.Status.Phase != corev1.ClaimPending || c.Annotations[storagehelpers.AnnStorageProvisioner] != "" {
		t.Fatalf("claim phase %s annotations %v, want Pending and not handed off", c.Status.Phase, c.Annotations)
	}
	// The class appears: the claim is handed to its provisioner.
	h.create(class("missing", provisioner, storagev1.VolumeBindingImmediate))
	h.waitClaim("data", func(c *corev1.PersistentVolumeClaim) bool {
		return c.Annotations[storagehelpers.AnnStorageProvisioner] == provisioner
	})
}

func TestInTreeProvisionerFails(t *testing.T) {
	h := start(t, class("local", "kubernetes.io/no-provisioner", storagev1.VolumeBindingImmediate), pvc("data", "1Gi", ofClass("local")))
	h.waitEvent("Warning ProvisioningFailed no volume plugin matched name: kubernetes.io/no-provisioner")
}

func TestDefaultClassAssigned(t *testing.T) {
	def := class("standard", provisioner, storagev1.VolumeBindingImmediate)
	def.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	h := start(t, def, pvc("data", "1Gi"), pvc("none", "1Gi", ofClass("")))
	h.waitClaim("data", func(c *corev1.PersistentVolumeClaim) bool {
		return c.Spec.StorageClassName != nil && *c.Spec.StorageClassName == "standard" &&
			c.Annotations[storagehelpers.AnnStorageProvisioner] == provisioner
	})
	// An explicit "" asks for no class: it keeps it.
	h.waitEvent("Normal FailedBinding")
	if c := h.claim("none"); *c.Spec.StorageClassName != "" {
		t.Errorf("class %q given to a claim asking for none", *c.Spec.StorageClassName)
	}
}

// bound starts the binder over a volume and a claim already bound to each
// other.
func bound(t *testing.T, volumeOpts ...func(*corev1.PersistentVolume)) *harness {
	t.Helper()
	claim := pvc("data", "1Gi")
	h := start(t, append([]runtime.Object{claim}, pv("vol", "1Gi", volumeOpts...))...)
	c := h.waitClaim("data", claimBound)
	checkBound(t, h.volume("vol"), c, true, true)
	return h
}

func (h *harness) deleteClaim(name string) {
	h.t.Helper()
	if err := h.client.CoreV1().PersistentVolumeClaims(ns).Delete(h.ctx(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func TestReleaseRetain(t *testing.T) {
	h := bound(t)
	h.deleteClaim("data")
	v := h.waitVolume("vol", volumePhase(corev1.VolumeReleased))
	if v.Spec.ClaimRef == nil || v.Spec.ClaimRef.Name != "data" {
		t.Errorf("claimRef %+v, want it kept", v.Spec.ClaimRef)
	}
	h.quiet(5 * syncPeriod)
	if v := h.volume("vol"); v.Status.Phase != corev1.VolumeReleased {
		t.Errorf("phase %s, want Released", v.Status.Phase)
	}
}

func TestReleaseDeleteExternal(t *testing.T) {
	h := bound(t, reclaim(corev1.PersistentVolumeReclaimDelete), func(v *corev1.PersistentVolume) {
		v.Annotations = map[string]string{storagehelpers.AnnDynamicallyProvisioned: provisioner}
	})
	h.deleteClaim("data")
	h.waitVolume("vol", volumePhase(corev1.VolumeReleased))
	// Left to the provisioner: it neither fails nor is deleted here.
	h.quiet(5 * syncPeriod)
	if v := h.volume("vol"); v.Status.Phase != corev1.VolumeReleased {
		t.Errorf("phase %s, want Released", v.Status.Phase)
	}
}

func TestReleaseDeleteWithoutDeleter(t *testing.T) {
	h := bound(t, reclaim(corev1.PersistentVolumeReclaimDelete))
	h.deleteClaim("data")
	msg := `error getting deleter volume plugin for volume "vol": no volume plugin matched`
	v := h.waitVolume("vol", volumePhase(corev1.VolumeFailed))
	if v.Status.Message != msg {
		t.Errorf("status message %q, want %q", v.Status.Message, msg)
	}
	h.waitEvent("Warning VolumeFailedDelete " + msg)
	h.quiet(5 * syncPeriod)
}

func TestReleaseRecycle(t *testing.T) {
	h := bound(t, reclaim(corev1.PersistentVolumeReclaimRecycle))
	h.deleteClaim("data")
	h.waitVolume("vol", volumePhase(corev1.VolumeFailed))
	h.waitEvent("Warning VolumeFailedRecycle No recycler plugin found for the volume!")
}

func TestClaimLost(t *testing.T) {
	h := bound(t)
	if err := h.client.CoreV1().PersistentVolumes().Delete(h.ctx(), "vol", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c := h.waitClaim("data", func(c *corev1.PersistentVolumeClaim) bool { return c.Status.Phase == corev1.ClaimLost })
	if c.Spec.VolumeName != "vol" || c.Status.Capacity != nil || c.Status.AccessModes != nil {
		t.Errorf("lost claim: volumeName %q capacity %v modes %v", c.Spec.VolumeName, c.Status.Capacity, c.Status.AccessModes)
	}
	h.waitEvent("Warning ClaimLost Bound claim has lost its PersistentVolume. Data on the volume is lost!")
}

func TestClaimMisbound(t *testing.T) {
	h := bound(t)
	// Someone points the volume at another claim.
	v := h.volume("vol")
	v.Spec.ClaimRef.UID = "someone-else"
	if _, err := h.client.CoreV1().PersistentVolumes().Update(h.ctx(), v, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitClaim("data", func(c *corev1.PersistentVolumeClaim) bool { return c.Status.Phase == corev1.ClaimLost })
	h.waitEvent("Warning ClaimMisbound Two claims are bound to the same volume, this one is bound incorrectly")
}

// TestConflictRetried: a write refused with 409 (the cache was stale) is
// retried, and the binding completes.
func TestConflictRetried(t *testing.T) {
	client := newFakeServer(pv("vol", "1Gi", func(v *corev1.PersistentVolume) { v.Status.Phase = corev1.VolumeAvailable }), pvc("data", "1Gi"))
	conflicts := 2
	var mu sync.Mutex
	client.PrependReactor("update", "persistentvolumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if a.GetSubresource() == "" && conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(corev1.Resource("persistentvolumes"), "vol", nil)
		}
		return false, nil, nil
	})
	h := run(t, client, time.Hour)
	c := h.waitClaim("data", claimBound)
	checkBound(t, h.volume("vol"), c, true, true)
}
