package pvprotection

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPodTerminated(t *testing.T) {
	now := metav1.Now()
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	stopped := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}
	tests := []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{"running", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running}}}, false},
		{"succeeded", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, true},
		{"failed", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed}}, true},
		{"deleted, still running", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running}}}, false},
		{"deleted, stopped", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{stopped}}}, true},
		{"deleted, init container running", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now},
			Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{running}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodTerminated(&tt.pod); got != tt.want {
				t.Errorf("PodTerminated = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClaimKeys(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
		}},
	}
	got := claimKeys(p)
	want := []string{"ns/data", "ns/app-scratch"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("claimKeys = %v, want %v", got, want)
	}
}

// TestInUseAsksTheServer: a pod the informer has not seen yet still holds
// the claim, found by the live list.
func TestInUseAsksTheServer(t *testing.T) {
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data"}}
	user := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"},
		Spec: corev1.PodSpec{NodeName: "node-1", Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
	}
	client := fake.NewClientset(claim, user)
	// The factory is never started: the pod cache stays empty.
	c, err := NewClaimProtection(client, informers.NewSharedInformerFactory(client, 0))
	if err != nil {
		t.Fatal(err)
	}
	used, err := c.inUse(t.Context(), claim)
	if err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Fatal("claim used by a pod only the API server knows reported unused")
	}
	other := claim.DeepCopy()
	other.Name = "other"
	if used, err := c.inUse(t.Context(), other); err != nil || used {
		t.Fatalf("unused claim: used %v err %v", used, err)
	}

	// The pod goes; the namespace's recent list still has it, but a
	// "used" from a shared list is checked against a fresh one.
	if err := client.CoreV1().Pods("ns").Delete(t.Context(), "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if used, err := c.inUse(t.Context(), claim); err != nil || used {
		t.Fatalf("claim of a deleted pod: used %v err %v", used, err)
	}
}
