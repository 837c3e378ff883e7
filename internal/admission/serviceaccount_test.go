package admission

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// accounts is a storage.Interface holding ServiceAccounts by key; only Get
// is used by the plugin.
type accounts struct {
	storage.Interface
	byKey map[string]*corev1.ServiceAccount
}

func (a accounts) Get(_ context.Context, key, _ string, out runtime.Object) error {
	sa, ok := a.byKey[key]
	if !ok {
		return storage.ErrNotFound
	}
	sa.DeepCopyInto(out.(*corev1.ServiceAccount))
	return nil
}

func admitPod(t *testing.T, a *ServiceAccount, pod *corev1.Pod) error {
	t.Helper()
	res := &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "pods"}
	return a.Admit(context.Background(), &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: res, Namespace: "ns", Name: pod.Name, Obj: pod})
}

func TestServiceAccountMountsTheToken(t *testing.T) {
	a := &ServiceAccount{Key: func(ns, n string) string { return ns + "/" + n }, Accounts: accounts{byKey: map[string]*corev1.ServiceAccount{
		"ns/robot": {ObjectMeta: metav1.ObjectMeta{Name: "robot"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}},
	}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		ServiceAccountName: "robot",
		InitContainers:     []corev1.Container{{Name: "init"}},
		Containers: []corev1.Container{
			{Name: "a"},
			{Name: "own", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: TokenMountPath}}},
		},
		Volumes: []corev1.Volume{{Name: "mine"}},
	}}
	if err := admitPod(t, a, pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Volumes) != 2 {
		t.Fatalf("volumes %+v, want mine and the token volume", pod.Spec.Volumes)
	}
	v := pod.Spec.Volumes[1]
	if !strings.HasPrefix(v.Name, "kube-api-access-") || len(v.Name) != len("kube-api-access-")+5 || v.Projected == nil || len(v.Projected.Sources) != 3 {
		t.Fatalf("token volume %+v", v)
	}
	src := v.Projected.Sources
	if tok := src[0].ServiceAccountToken; tok == nil || tok.Path != "token" || *tok.ExpirationSeconds != 3607 {
		t.Errorf("token source %+v", src[0])
	}
	if cm := src[1].ConfigMap; cm == nil || cm.Name != "kube-root-ca.crt" || cm.Items[0].Key != "ca.crt" || cm.Items[0].Path != "ca.crt" {
		t.Errorf("CA source %+v", src[1])
	}
	if d := src[2].DownwardAPI; d == nil || d.Items[0].Path != "namespace" || d.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("namespace source %+v", src[2])
	}
	if *v.Projected.DefaultMode != 0o644 {
		t.Errorf("mode %o", *v.Projected.DefaultMode)
	}
	want := corev1.VolumeMount{Name: v.Name, ReadOnly: true, MountPath: TokenMountPath}
	for _, c := range []corev1.Container{pod.Spec.InitContainers[0], pod.Spec.Containers[0]} {
		if len(c.VolumeMounts) != 1 || !equality.Semantic.DeepEqual(c.VolumeMounts[0], want) {
			t.Errorf("container %s mounts %+v, want %+v", c.Name, c.VolumeMounts, want)
		}
	}
	if m := pod.Spec.Containers[1].VolumeMounts; len(m) != 1 || m[0].Name != "mine" {
		t.Errorf("a container with its own mount at the path got %+v", m)
	}
	if len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("imagePullSecrets %+v, want the account's", pod.Spec.ImagePullSecrets)
	}

	// Admitting again (the update loop may) adds nothing.
	before := pod.DeepCopy()
	if err := admitPod(t, a, pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Volumes) != len(before.Spec.Volumes) || len(pod.Spec.Containers[0].VolumeMounts) != 1 {
		t.Errorf("second admission changed the pod: %+v", pod.Spec)
	}
}

func TestServiceAccountAutomountAndMissingAccounts(t *testing.T) {
	a := &ServiceAccount{Key: func(ns, n string) string { return ns + "/" + n }, Accounts: accounts{byKey: map[string]*corev1.ServiceAccount{
		"ns/quiet": {ObjectMeta: metav1.ObjectMeta{Name: "quiet"}, AutomountServiceAccountToken: ptr.To(false)},
	}}}
	tests := []struct {
		name      string
		account   string
		podMount  *bool
		wantToken bool
	}{
		{"missing default account is admitted", "", nil, true},
		{"account turns it off", "quiet", nil, false},
		{"pod overrides its account", "quiet", ptr.To(true), true},
		{"pod turns it off", "", ptr.To(false), false},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
			ServiceAccountName: tt.account, AutomountServiceAccountToken: tt.podMount, Containers: []corev1.Container{{Name: "c"}},
		}}
		if err := admitPod(t, a, pod); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.account == "" && pod.Spec.ServiceAccountName != "default" {
			t.Errorf("%s: serviceAccountName %q, want default", tt.name, pod.Spec.ServiceAccountName)
		}
		if got := len(pod.Spec.Volumes) == 1; got != tt.wantToken {
			t.Errorf("%s: token volume %v, want %v (%+v)", tt.name, got, tt.wantToken, pod.Spec.Volumes)
		}
	}

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{ServiceAccountName: "ghost", Containers: []corev1.Container{{Name: "c"}}}}
	err := admitPod(t, a, pod)
	want := `pods "p" is forbidden: error looking up service account ns/ghost: serviceaccount "ghost" not found`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("missing account: %v, want 403 %q", err, want)
	}
}
