package integration

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// warnings collects the Warning headers a client receives.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(code int, _ string, text string) {
	if code == 299 && text != "" {
		w.mu.Lock()
		w.got = append(w.got, text)
		w.mu.Unlock()
	}
}

// take returns the warnings received since the last take.
func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.got
	w.got = nil
	return got
}

// Pod Security Admission: a namespace's pod-security.kubernetes.io labels
// refuse (enforce), warn about (warn) pods that violate its level, and
// warn about workloads whose pod template would.
func TestPodSecurity(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("deployment", "replicaset"))
	ctx := ctxT(t)
	w := &warnings{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = w
	cs := kubernetes.NewForConfigOrDie(cfg)
	namespace := func(name string, labels map[string]string) {
		t.Helper()
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	namespace("restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	namespace("warned", map[string]string{"pod-security.kubernetes.io/warn": "baseline"})

	privileged := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
		SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
	compliant := corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
	}
	const violations = `privileged (container "c" must not set securityContext.privileged=true), ` +
		`allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ` +
		`unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ` +
		`runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ` +
		`seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
	pod := func(ns, name string, spec corev1.PodSpec) (*corev1.Pod, error) {
		return cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{})
	}

	_, err := pod("restricted", "x", privileged)
	if want := `pods "x" is forbidden: violates PodSecurity "restricted:latest": ` + violations; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("a privileged pod under enforce=restricted: %v\nwant 403 %s", err, want)
	}
	if got := w.take(); len(got) != 0 {
		t.Errorf("a refused pod was warned too: %q", got)
	}
	if _, err := pod("restricted", "ok", compliant); err != nil {
		t.Fatalf("a restricted pod under enforce=restricted: %v", err)
	}
	// A dry run is held to the policy as well.
	_, err = cs.CoreV1().Pods("restricted").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dry"}, Spec: privileged},
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a privileged pod, dry run: %v, want 403", err)
	}

	hostPath := *compliant.DeepCopy()
	hostPath.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}}
	if _, err := pod("warned", "h", hostPath); err != nil {
		t.Fatalf("a hostPath pod under warn=baseline: %v", err)
	}
	if diff := cmp.Diff([]string{`would violate PodSecurity "baseline:latest": hostPath volumes (volume "h")`}, w.take()); diff != "" {
		t.Errorf("warn=baseline, hostPath pod: warnings (-want +got):\n%s", diff)
	}

	// A workload is created with a warning; its pods are refused.
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}}, Spec: privileged},
	}}
	if _, err := cs.AppsV1().Deployments("restricted").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a deployment with a privileged template under enforce=restricted: %v", err)
	}
	if diff := cmp.Diff([]string{`would violate PodSecurity "restricted:latest": ` + violations}, w.take()); diff != "" {
		t.Errorf("deployment: warnings (-want +got):\n%s", diff)
	}
	framework.Eventually(t, 10*time.Second, func() bool {
		rss, err := cs.AppsV1().ReplicaSets("restricted").List(ctx, metav1.ListOptions{})
		if err != nil || len(rss.Items) == 0 {
			return false
		}
		for _, cond := range rss.Items[0].Status.Conditions {
			if cond.Type == appsv1.ReplicaSetReplicaFailure && strings.Contains(cond.Message, `violates PodSecurity "restricted:latest"`) {
				return true
			}
		}
		return false
	})

	// Namespace labels: an invalid level is refused; a stricter enforce
	// level warns about the pods already there.
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "warned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := ns.DeepCopy()
	bad.Labels["pod-security.kubernetes.io/enforce"] = "strict"
	_, err = cs.CoreV1().Namespaces().Update(ctx, bad, metav1.UpdateOptions{})
	const invalid = `Namespace "warned" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted`
	if !apierrors.IsInvalid(err) || err.Error() != invalid {
		t.Fatalf("an invalid enforce level: %v, want 422 %s", err, invalid)
	}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "baseline"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`existing pods in namespace "warned" violate the new PodSecurity enforce level "baseline:latest"`,
		`h: hostPath volumes`,
	}
	if diff := cmp.Diff(want, w.take()); diff != "" {
		t.Errorf("enforce=baseline over a hostPath pod: warnings (-want +got):\n%s", diff)
	}

	// kube-system carries no pod security labels: the server's own pods
	// there are never held to a level.
	ks, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range ks.Labels {
		if strings.HasPrefix(k, "pod-security.kubernetes.io/") {
			t.Errorf("kube-system is labelled %s=%s", k, ks.Labels[k])
		}
	}
}
