package kubelet_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A pod's sandbox runs with its RuntimeClass's handler, not the class's
// name: class "sandboxed" with handler "runc" runs on containerd's runc.
func TestKubeletRunsSandboxWithRuntimeClassHandler(t *testing.T) {
	h := start(t)
	if _, err := h.c.Client.NodeV1().RuntimeClasses().Create(h.ctx, &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "sandboxed"}, Handler: "runc"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "classy", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:         "n1",
			RuntimeClassName: ptr.To("sandboxed"),
			Containers:       []corev1.Container{{Name: "c", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	if _, err := h.c.Client.CoreV1().Pods("default").Create(h.ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := h.waitStatus("classy", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	h.rt.Lock()
	defer h.rt.Unlock()
	var handlers []string
	for _, sb := range h.rt.Sandboxes {
		if sb.Metadata.GetUid() == string(got.UID) {
			handlers = append(handlers, sb.RuntimeHandler)
		}
	}
	if len(handlers) != 1 || handlers[0] != "runc" {
		t.Errorf("sandbox runtime handlers %q, want [runc]", handlers)
	}
}
