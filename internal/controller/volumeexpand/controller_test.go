package volumeexpand

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

const (
	ns       = "default"
	timeout  = 10 * time.Second
	ourProv  = "skiff.io/local-path"
	otherPro = "example.com/nfs"
)

// harness runs the controller over a fake clientset until the test ends.
type harness struct {
	t      *testing.T
	client *fake.Clientset
	ctrl   *Controller
	rec    *record.FakeRecorder

	mu     sync.Mutex
	events []string
}

func start(t *testing.T, client *fake.Clientset) *harness {
	t.Helper()
	// The controller runs here rather than through test/framework, which
	// imports the server and so this package.
	h := &harness{t: t, client: client, rec: record.NewFakeRecorder(10000)}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, h.rec, Options{Provisioners: []string{ourProv}})
	if err != nil {
		t.Fatal(err)
	}
	h.ctrl = c
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
		factory.Shutdown()
	})
	eventually(t, timeout, func() bool { return cache.WaitForCacheSync(t.Context().Done(), h.ctrl.synced...) })
	return h
}

// eventually fails the test unless cond holds within timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bound returns a claim requesting size and a volume of that size made by
// provisioner, bound to each other.
func bound(name, size, provisioner string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	q := resource.MustParse(size)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			VolumeName: "pv-" + name,
			Resources:  corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
		Status: corev1.PersistentVolumeClaimStatus{
			Phase:       corev1.ClaimBound,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: q},
		},
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + name, Annotations: map[string]string{provisionedBy: provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: q},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			ClaimRef:    &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: name, UID: pvc.UID},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	return pvc, pv
}

func (h *harness) claim(name string) *corev1.PersistentVolumeClaim {
	h.t.Helper()
	c, err := h.client.CoreV1().PersistentVolumeClaims(ns).Get(h.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("claim %s: %v", name, err)
	}
	return c
}

func (h *harness) volume(name string) *corev1.PersistentVolume {
	h.t.Helper()
	v, err := h.client.CoreV1().PersistentVolumes().Get(h.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("volume %s: %v", name, err)
	}
	return v
}

// raise sets the claim's request to size, as a user would.
func (h *harness) raise(name, size string) {
	h.t.Helper()
	pvc := h.claim(name)
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
	if _, err := h.client.CoreV1().PersistentVolumeClaims(ns).Update(h.t.Context(), pvc, metav1.UpdateOptions{}); err != nil {
		h.t.Fatalf("raise %s: %v", name, err)
	}
}

// waitExpanded waits until the claim reports size and no expansion under
// way, and returns it.
func (h *harness) waitExpanded(name, size string) *corev1.PersistentVolumeClaim {
	h.t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	eventually(h.t, timeout, func() bool {
		pvc = h.claim(name)
		return pvc.Status.Capacity.Storage().Cmp(resource.MustParse(size)) == 0 && pvc.Status.AllocatedResourceStatuses == nil
	})
	return pvc
}

// eventList drains the recorder and returns every event so far.
func (h *harness) eventList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		select {
		case e := <-h.rec.Events:
			h.events = append(h.events, e)
			continue
		default:
		}
		return slices.Clone(h.events)
	}
}

// writes lists the create, update, patch and delete calls made on the
// object named name, as "verb resource[/subresource]".
func (h *harness) writes(name string) []string {
	var out []string
	for _, a := range h.client.Actions() {
		var obj runtime.Object
		switch a := a.(type) {
		case k8stesting.UpdateAction:
			obj = a.GetObject()
		case k8stesting.CreateAction:
			obj = a.GetObject()
		case k8stesting.PatchAction:
			if a.GetName() == name {
				out = append(out, "patch "+a.GetResource().Resource)
			}
			continue
		case k8stesting.DeleteAction:
			if a.GetName() == name {
				out = append(out, "delete "+a.GetResource().Resource)
			}
			continue
		default:
			continue
		}
		if m, ok := obj.(metav1.Object); ok && m.GetName() == name {
			r := a.GetResource().Resource
			if s := a.GetSubresource(); s != "" {
				r += "/" + s
			}
			out = append(out, a.GetVerb()+" "+r)
		}
	}
	return out
}

// A claim raised from 1Gi to 2Gi goes through external-resizer's steps:
// the claim marked ControllerResizeInProgress for 2Gi, the volume grown,
// the claim's capacity set, with upstream's events.
func TestExpand(t *testing.T) {
	pvc, pv := bound("data", "1Gi", ourProv)
	pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimVolumeModifyingVolume, Status: corev1.ConditionTrue}}
	h := start(t, fake.NewClientset(pvc, pv))
	h.raise("data", "2Gi")

	got := h.waitExpanded("data", "2Gi")
	if c := h.volume("pv-data").Spec.Capacity.Storage(); c.String() != "2Gi" {
		t.Errorf("volume capacity %s, want 2Gi", c)
	}
	if a := got.Status.AllocatedResources.Storage(); a.String() != "2Gi" {
		t.Errorf("claim allocatedResources %s, want 2Gi", a)
	}
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != corev1.PersistentVolumeClaimVolumeModifyingVolume {
		t.Errorf("claim conditions %+v, want only the unrelated one kept", got.Status.Conditions)
	}

	// The steps, in order, each written once.
	claimWrites := h.writes("data")
	if want := []string{"update persistentvolumeclaims", "update persistentvolumeclaims/status", "update persistentvolumeclaims/status"}; !slices.Equal(claimWrites, want) {
		t.Errorf("claim writes %v, want %v (the raise, then two status writes)", claimWrites, want)
	}
	if w := h.writes("pv-data"); !slices.Equal(w, []string{"update persistentvolumes"}) {
		t.Errorf("volume writes %v, want one update", w)
	}
	var steps []string
	for _, a := range h.client.Actions() {
		switch u := a.(type) {
		case k8stesting.UpdateAction:
			switch o := u.GetObject().(type) {
			case *corev1.PersistentVolumeClaim:
				if u.GetSubresource() == "status" {
					steps = append(steps, "claim "+string(o.Status.AllocatedResourceStatuses[corev1.ResourceStorage])+" capacity "+o.Status.Capacity.Storage().String())
				}
			case *corev1.PersistentVolume:
				steps = append(steps, "volume capacity "+o.Spec.Capacity.Storage().String())
			}
		}
	}
	if want := []string{"claim ControllerResizeInProgress capacity 1Gi", "volume capacity 2Gi", "claim  capacity 2Gi"}; !slices.Equal(steps, want) {
		t.Errorf("steps %q, want %q", steps, want)
	}

	eventually(t, timeout, func() bool { return len(h.eventList()) >= 2 })
	if want := []string{"Normal Resizing External resizer is resizing volume pv-data", "Normal VolumeResizeSuccessful Resize volume succeeded"}; !slices.Equal(h.eventList(), want) {
		t.Errorf("events %q, want %q", h.eventList(), want)
	}
}

// A claim whose volume another provisioner made is left to that
// provisioner's resizer, and so is a volume bound to an earlier claim of
// the same name.
func TestOthersUntouched(t *testing.T) {
	theirs, theirPV := bound("theirs", "1Gi", otherPro)
	stale, stalePV := bound("stale", "1Gi", ourProv)
	stalePV.Spec.ClaimRef.UID = "uid-earlier"
	ours, ourPV := bound("ours", "1Gi", ourProv)
	h := start(t, fake.NewClientset(theirs, theirPV, stale, stalePV, ours, ourPV))
	h.raise("theirs", "2Gi")
	h.raise("stale", "2Gi")
	h.raise("ours", "2Gi")
	h.waitExpanded("ours", "2Gi")

	// Whatever the queue's order, each claim is looked at once more here.
	for _, key := range []string{ns + "/theirs", ns + "/stale"} {
		if err := h.ctrl.sync(t.Context(), key); err != nil {
			t.Errorf("sync %s: %v", key, err)
		}
	}
	for _, name := range []string{"theirs", "stale"} {
		if w := h.writes(name); !slices.Equal(w, []string{"update persistentvolumeclaims"}) {
			t.Errorf("claim %s: writes %v, want only the raise", name, w)
		}
		if w := h.writes("pv-" + name); len(w) != 0 {
			t.Errorf("volume pv-%s: writes %v, want none", name, w)
		}
		if c := h.claim(name); c.Status.AllocatedResources != nil || c.Status.Capacity.Storage().String() != "1Gi" {
			t.Errorf("claim %s: status %+v, want untouched", name, c.Status)
		}
	}
}

// A volume update that loses a race is retried until it lands, without a
// VolumeResizeFailed event: both for a fresh expansion and for one found
// under way (a restart between steps), where no claim write precedes the
// volume's to bring the claim back.
func TestVolumeConflictRetried(t *testing.T) {
	for _, resumed := range []bool{false, true} {
		name := map[bool]string{false: "fresh", true: "resumed"}[resumed]
		t.Run(name, func(t *testing.T) {
			pvc, pv := bound("data", "1Gi", ourProv)
			if resumed {
				pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
				pvc.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}
				pvc.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{
					corev1.ResourceStorage: corev1.PersistentVolumeClaimControllerResizeInProgress,
				}
				pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue}}
			}
			client := fake.NewClientset(pvc, pv)
			var mu sync.Mutex
			attempts := 0
			client.PrependReactor("update", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				attempts++
				if attempts == 1 {
					return true, nil, apierrors.NewConflict(corev1.Resource("persistentvolumes"), "pv-data",
						errors.New("the object has been modified; please apply your changes to the latest version and try again"))
				}
				return false, nil, nil
			})
			h := start(t, client)
			if !resumed {
				h.raise("data", "2Gi")
			}

			h.waitExpanded("data", "2Gi")
			if c := h.volume("pv-data").Spec.Capacity.Storage(); c.String() != "2Gi" {
				t.Errorf("volume capacity %s, want 2Gi", c)
			}
			mu.Lock()
			if attempts != 2 {
				t.Errorf("%d volume updates, want 2 (one conflict, one retry)", attempts)
			}
			mu.Unlock()
			eventually(t, timeout, func() bool {
				return slices.ContainsFunc(h.eventList(), func(e string) bool { return strings.Contains(e, reasonResizeSuccess) })
			})
			for _, e := range h.eventList() {
				if strings.Contains(e, reasonResizeFailed) {
					t.Errorf("event %q after a conflict", e)
				}
			}
		})
	}
}

// A volume the cache sees only after its claim asked for more is still
// expanded: its arrival brings the claim back.
func TestVolumeArrivesLate(t *testing.T) {
	pvc, pv := bound("data", "1Gi", ourProv)
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	h := start(t, fake.NewClientset(pvc))
	// The claim has been looked at and set aside.
	if err := h.ctrl.sync(t.Context(), ns+"/data"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if _, err := h.client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitExpanded("data", "2Gi")
}

func TestNewNeedsProvisioners(t *testing.T) {
	client := fake.NewClientset()
	if _, err := New(client, informers.NewSharedInformerFactory(client, 0), nil); err == nil {
		t.Error("New without provisioners: no error")
	}
}
