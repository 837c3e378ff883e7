package statefulset_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/controller/statefulset"
	"github.com/skiff-io/skiff/test/framework"
)

const (
	retainClaims = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	deleteClaims = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
)

// retentionSet is a Parallel set "web" with one claim template "www" and
// the given retention policy; its pods carry finalizer, if any, so that
// a deleted pod stays (terminating) until the test lets it go.
func retentionSet(replicas int32, whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType, finalizer string) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr(replicas),
			ServiceName:         "nginx",
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "www"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: whenDeleted, WhenScaled: whenScaled,
			},
		},
	}
	if finalizer != "" {
		set.Spec.Template.Finalizers = []string{finalizer}
	}
	return set
}

// updateSet applies change to the stored set "web", retrying on conflict.
func updateSet(t *testing.T, client kubernetes.Interface, change func(*appsv1.StatefulSet)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := getSet(context.Background(), client)
		if err != nil {
			return err
		}
		change(s)
		_, err = client.AppsV1().StatefulSets("default").Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes, BlockOwnerDeletion: &yes}
}

// waitClaimOwners waits until claim name has exactly the owner references
// want and returns it.
func waitClaimOwners(t *testing.T, client kubernetes.Interface, name string, want ...metav1.OwnerReference) *corev1.PersistentVolumeClaim {
	t.Helper()
	var claim *corev1.PersistentVolumeClaim
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		c, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		claim = c
		return cmp.Equal(want, c.OwnerReferences, cmpopts.EquateEmpty()), nil
	})
	if err != nil {
		if claim == nil {
			t.Fatalf("claim %s: %v", name, err)
		}
		t.Fatalf("claim %s owners (-want +got):\n%s", name, cmp.Diff(want, claim.OwnerReferences, cmpopts.EquateEmpty()))
	}
	return claim
}

func waitTerminating(t *testing.T, client kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, "pod "+name+" terminating", func(ctx context.Context) (bool, error) {
		p, err := getPod(ctx, client, name)
		pod = p
		return err == nil && p.DeletionTimestamp != nil, nil
	})
	return pod
}

func releasePod(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	_, err := client.CoreV1().Pods("default").Patch(context.Background(), name, types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod "+name+" gone", func(ctx context.Context) (bool, error) {
		p, err := getPod(ctx, client, name)
		return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp == nil), nil
	})
}

// before reports whether resource version a was written before b (the
// server's versions are etcd revisions).
func before(t *testing.T, a, b string) bool {
	t.Helper()
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("resource versions %q, %q are not numbers", a, b)
	}
	return x < y
}

// TestStatefulSetClaimRetention follows the owner references the
// controller sets on claims (no garbage collector runs here): the set's
// under whenDeleted Delete, a condemned pod's under whenScaled Delete
// before that pod is deleted, none under Retain, and a claim owned by an
// earlier pod holds back the new one until the claim is gone.
func TestStatefulSetClaimRetention(t *testing.T) {
	// pvc-protection takes off the finalizer a new claim is given, once no
	// pod uses it, so that a deleted claim goes.
	cluster := framework.StartInProcess(t, framework.WithControllers("pvc-protection"))
	client := cluster.NewClient(t)
	framework.RunController(t, client, record.NewFakeRecorder(framework.RecorderSize), framework.Builder(statefulset.New))
	ctx := context.Background()
	const hold = "test.skiff.io/hold"
	created, err := client.AppsV1().StatefulSets("default").Create(ctx, retentionSet(3, deleteClaims, deleteClaims, hold), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setRef := controllerRef("apps/v1", "StatefulSet", "web", created.UID)
	pods := map[string]*corev1.Pod{}
	for i := range 3 {
		name := "web-" + strconv.Itoa(i)
		pods[name] = waitPod(t, client, name, "")
		waitClaimOwners(t, client, "www-"+name, setRef)
	}

	// Scale down: the claims of web-1 and web-2 go to their pods, before
	// the pods are deleted; web-0's stays with the set.
	updateSet(t, client, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(1)) })
	for _, name := range []string{"web-1", "web-2"} {
		claim := waitClaimOwners(t, client, "www-"+name, controllerRef("v1", "Pod", name, pods[name].UID))
		pod := waitTerminating(t, client, name)
		if !before(t, claim.ResourceVersion, pod.ResourceVersion) {
			t.Errorf("pod %s deleted at %s, before its claim took it as owner at %s", name, pod.ResourceVersion, claim.ResourceVersion)
		}
	}
	waitClaimOwners(t, client, "www-web-0", setRef)

	// Back in range before they are gone: the claims lose the pod
	// reference, and the terminating pods' successors get them back.
	updateSet(t, client, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(3)) })
	waitClaimOwners(t, client, "www-web-1", setRef)
	waitClaimOwners(t, client, "www-web-2", setRef)
	releasePod(t, client, "web-2")
	web2 := waitPod(t, client, "web-2", string(pods["web-2"].UID))
	if web2.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "www-web-2" {
		t.Errorf("new web-2 volumes = %+v", web2.Spec.Volumes)
	}

	// Retain: the controller takes its references off again.
	updateSet(t, client, func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted = retainClaims
		s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = retainClaims
	})
	for i := range 3 {
		waitClaimOwners(t, client, "www-web-"+strconv.Itoa(i))
	}

	// whenScaled Delete: web-2 is scaled away with its claim owned by it;
	// the claim outlives it here (no garbage collector), and web-2 is not
	// made again on it until the claim is gone.
	updateSet(t, client, func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = deleteClaims
		s.Spec.Replicas = ptr(int32(2))
	})
	old := waitClaimOwners(t, client, "www-web-2", controllerRef("v1", "Pod", "web-2", web2.UID))
	waitTerminating(t, client, "web-2")
	releasePod(t, client, "web-2")
	updateSet(t, client, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(3)) })
	waitFor(t, "the set to see replicas 3", func(ctx context.Context) (bool, error) {
		s, err := getSet(ctx, client)
		return err == nil && s.Status.ObservedGeneration == s.Generation && *s.Spec.Replicas == 3, nil
	})
	if p, err := getPod(ctx, client, "web-2"); err == nil {
		t.Fatalf("web-2 created (uid %s) on a claim its predecessor owns", p.UID)
	}
	if err := client.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "www-web-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, client, "web-2", string(web2.UID))
	fresh := waitClaimOwners(t, client, "www-web-2")
	if fresh.UID == old.UID {
		t.Errorf("claim www-web-2 not made again")
	}
}

// TestStatefulSetClaimRetentionCollected runs the garbage collector with
// the controller: a claim goes with its pod when scaled away, and the
// rest go with the set.
func TestStatefulSetClaimRetentionCollected(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers("garbagecollector", "pvc-protection"))
	client := cluster.NewClient(t)
	framework.RunController(t, client, record.NewFakeRecorder(framework.RecorderSize), framework.Builder(statefulset.New))
	ctx := context.Background()
	if _, err := client.AppsV1().StatefulSets("default").Create(ctx, retentionSet(2, deleteClaims, deleteClaims, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, client, "web-1", "")
	claimGone := func(name string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}
	}

	updateSet(t, client, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(1)) })
	waitFor(t, "claim www-web-1 collected", claimGone("www-web-1"))
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{}); err != nil {
		t.Fatalf("claim www-web-0: %v", err)
	}

	if err := client.AppsV1().StatefulSets("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "claim www-web-0 collected", claimGone("www-web-0"))
}
