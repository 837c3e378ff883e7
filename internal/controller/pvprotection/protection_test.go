package pvprotection_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/pvprotection"
)

const (
	ns      = "default"
	timeout = 10 * time.Second
)

type starter interface{ Start(context.Context) error }

// run builds a controller over a fake clientset holding objs, runs it until
// the test ends and returns the clientset.
func run(t *testing.T, build func(*fake.Clientset, informers.SharedInformerFactory) (starter, error), objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := build(client, factory)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	return client
}

func claims(client *fake.Clientset, factory informers.SharedInformerFactory) (starter, error) {
	return pvprotection.NewClaimProtection(client, factory)
}

func volumes(client *fake.Clientset, factory informers.SharedInformerFactory) (starter, error) {
	return pvprotection.NewVolumeProtection(client, factory)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// consistently checks cond for d: a finalizer that must stay stays.
func consistently(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s: no longer holds", what)
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func pvc(name string, opts ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("claim-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// beingDeleted is how the API server leaves an object with finalizers that
// was deleted: the fake deletes at once, so the tests start from here.
func beingDeleted(finalizers ...string) func(metav1.Object) {
	return func(m metav1.Object) {
		now := metav1.Now()
		m.SetDeletionTimestamp(&now)
		m.SetFinalizers(finalizers)
	}
}

func claimDeleted(c *corev1.PersistentVolumeClaim) {
	beingDeleted(pvprotection.ClaimFinalizer, "example.com/other")(c)
}

func pod(name, claim, node string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("pod-" + name)},
		Spec: corev1.PodSpec{
			NodeName: node,
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func claimFinalizers(t *testing.T, client *fake.Clientset, name string) []string {
	t.Helper()
	c, err := client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Finalizers
}

func TestClaimFinalizerAdded(t *testing.T) {
	client := run(t, claims, pvc("data", func(c *corev1.PersistentVolumeClaim) { c.Finalizers = []string{"example.com/other"} }))
	eventually(t, "finalizer added", func() bool {
		return slices.Equal(claimFinalizers(t, client, "data"), []string{"example.com/other", pvprotection.ClaimFinalizer})
	})
}

func TestClaimUnusedReleased(t *testing.T) {
	client := run(t, claims,
		pvc("data", claimDeleted),
		// Not holding it: unscheduled, or using another claim.
		pod("pending", "data", ""),
		pod("other", "elsewhere", "node-1"))
	eventually(t, "finalizer removed", func() bool {
		return slices.Equal(claimFinalizers(t, client, "data"), []string{"example.com/other"})
	})
}

func TestClaimInUseKept(t *testing.T) {
	client := run(t, claims,
		pvc("data", claimDeleted),
		pod("app", "data", "node-1"),
		// As upstream, a finished pod still holds the claim while it
		// exists.
		pod("job", "data", "node-1", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }))
	held := func() bool { return slices.Contains(claimFinalizers(t, client, "data"), pvprotection.ClaimFinalizer) }
	consistently(t, "claim held by its pods", 500*time.Millisecond, held)

	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	consistently(t, "claim held by its finished pod", 300*time.Millisecond, held)
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "job", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "finalizer removed once the pods are gone", func() bool { return !held() })
}

func TestClaimOfEphemeralVolume(t *testing.T) {
	owner := pod("app", "", "node-1", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}}
	})
	claim := pvc("app-scratch", claimDeleted, func(c *corev1.PersistentVolumeClaim) {
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "app", UID: owner.UID, Controller: ptr.To(true)}}
	})
	client := run(t, claims, claim, owner)
	held := func() bool {
		return slices.Contains(claimFinalizers(t, client, "app-scratch"), pvprotection.ClaimFinalizer)
	}
	consistently(t, "claim held by its pod", 300*time.Millisecond, held)

	// The pod is shut down (deleted with grace period 0): the claim goes.
	p, err := client.CoreV1().Pods(ns).Get(t.Context(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, ptr.To[int64](0)
	p.Status.Phase = corev1.PodSucceeded
	if _, err := client.CoreV1().Pods(ns).Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "finalizer removed", func() bool { return !held() })
}

func pv(name string, phase corev1.PersistentVolumePhase, opts ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		},
		Status: corev1.PersistentVolumeStatus{Phase: phase},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func volumeDeleted(v *corev1.PersistentVolume) { beingDeleted(pvprotection.VolumeFinalizer)(v) }

func volumeFinalizers(t *testing.T, client *fake.Clientset, name string) []string {
	t.Helper()
	v, err := client.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v.Finalizers
}

func TestVolumeFinalizerAdded(t *testing.T) {
	client := run(t, volumes, pv("vol", corev1.VolumeAvailable))
	eventually(t, "finalizer added", func() bool {
		return slices.Equal(volumeFinalizers(t, client, "vol"), []string{pvprotection.VolumeFinalizer})
	})
}

func TestVolumeReleasedWhenNotBound(t *testing.T) {
	for _, phase := range []corev1.PersistentVolumePhase{corev1.VolumeAvailable, corev1.VolumeReleased, corev1.VolumeFailed, corev1.VolumePending} {
		t.Run(string(phase), func(t *testing.T) {
			client := run(t, volumes, pv("vol", phase, volumeDeleted))
			eventually(t, "finalizer removed", func() bool { return len(volumeFinalizers(t, client, "vol")) == 0 })
		})
	}
}

func TestVolumeBoundKept(t *testing.T) {
	client := run(t, volumes, pv("vol", corev1.VolumeBound, volumeDeleted))
	held := func() bool { return slices.Contains(volumeFinalizers(t, client, "vol"), pvprotection.VolumeFinalizer) }
	consistently(t, "bound volume held", 300*time.Millisecond, held)

	// Its claim goes: the binder marks it Released.
	v, err := client.CoreV1().PersistentVolumes().Get(t.Context(), "vol", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v.Status.Phase = corev1.VolumeReleased
	if _, err := client.CoreV1().PersistentVolumes().UpdateStatus(t.Context(), v, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "finalizer removed", func() bool { return !held() })
}
