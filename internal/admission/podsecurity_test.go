package admission

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// namespaceStore holds namespaces by name (Get only).
type namespaceStore struct {
	storage.Interface
	byName map[string]*corev1.Namespace
}

func (n namespaceStore) Get(_ context.Context, key, _ string, out runtime.Object) error {
	ns, ok := n.byName[key]
	if !ok {
		return storage.ErrNotFound
	}
	ns.DeepCopyInto(out.(*corev1.Namespace))
	return nil
}

// podStore lists the pods it holds under "<namespace>/" (List only).
type podStore struct {
	storage.Interface
	pods []corev1.Pod
}

func (p podStore) List(_ context.Context, prefix string, _ storage.ListOptions, out runtime.Object) error {
	l := out.(*corev1.PodList)
	for _, pod := range p.pods {
		if pod.Namespace+"/" == prefix {
			l.Items = append(l.Items, pod)
		}
	}
	return nil
}

func newPodSecurity(t *testing.T, namespaces map[string]map[string]string, pods ...corev1.Pod) *PodSecurity {
	t.Helper()
	p, err := NewPodSecurity()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*corev1.Namespace{}
	for name, labels := range namespaces {
		byName[name] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	p.Namespaces, p.NamespaceKey = namespaceStore{byName: byName}, func(name string) string { return name }
	p.Pods, p.PodPrefix = podStore{pods: pods}, func(ns string) string { return ns + "/" }
	return p
}

// admitted is what one admission left: its error, the Warning headers
// and the audit annotations.
type admitted struct {
	err         error
	warnings    []string
	annotations map[string]string
}

func admit(p *PodSecurity, req *apiserver.AdmissionRequest) admitted {
	w := httptest.NewRecorder()
	ctx := apiserver.WithNotes(context.Background(), w)
	err := p.Admit(ctx, req)
	// Admission may run again for one update: warnings stay single.
	if err == nil {
		_ = p.Admit(ctx, req)
	}
	return admitted{err: err, warnings: w.Header().Values("Warning"), annotations: apiserver.AuditAnnotations(ctx)}
}

var (
	podsRes        = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "pods", Namespaced: true}
	namespacesRes  = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "namespaces"}
	deploymentsRes = &registry.Resource{GroupVersion: schema.GroupVersion{Group: "apps", Version: "v1"}, Name: "deployments", Namespaced: true}
)

func privilegedPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}},
	}}
}

func restrictedPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}}},
	}}
}

func hostPathPod(name string) *corev1.Pod {
	p := restrictedPod(name)
	p.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}}
	return p
}

func sysctlPod(names ...string) *corev1.Pod {
	p := restrictedPod("x")
	for _, n := range names {
		p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
	}
	return p
}

const privilegedRestricted = `privileged (container "c" must not set securityContext.privileged=true), ` +
	`allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ` +
	`unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ` +
	`runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ` +
	`seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`

func TestPodSecurityPods(t *testing.T) {
	const ns = "ns"
	for _, tc := range []struct {
		name        string
		labels      map[string]string
		req         *apiserver.AdmissionRequest
		err         string
		warnings    []string
		annotations map[string]string
	}{
		{name: "no labels: privileged", labels: nil,
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: privilegedPod("x")},
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "privileged:latest"}},
		{name: "enforce restricted refuses", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: privilegedPod("x")},
			err:         `pods "x" is forbidden: violates PodSecurity "restricted:latest": ` + privilegedRestricted,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "restricted:latest"}},
		{name: "enforce restricted admits a compliant pod", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: restrictedPod("x")},
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "restricted:latest"}},
		{name: "enforce with a version", labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.30"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: hostPathPod("x")},
			err:         `pods "x" is forbidden: violates PodSecurity "baseline:v1.30": hostPath volumes (volume "h")`,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "baseline:v1.30"}},
		{name: "warn baseline", labels: map[string]string{"pod-security.kubernetes.io/warn": "baseline"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: hostPathPod("x")},
			warnings:    []string{`299 - "would violate PodSecurity \"baseline:latest\": hostPath volumes (volume \"h\")"`},
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "privileged:latest"}},
		{name: "audit restricted", labels: map[string]string{"pod-security.kubernetes.io/audit": "restricted"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: privilegedPod("x")},
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "privileged:latest",
				"pod-security.kubernetes.io/audit-violations": `would violate PodSecurity "restricted:latest": ` + privilegedRestricted}},
		{name: "a refused pod is not warned too", labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: hostPathPod("x")},
			err:         `pods "x" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "h")`,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}},
		{name: "an invalid label enforces restricted", labels: map[string]string{"pod-security.kubernetes.io/enforce": "bogus"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: hostPathPod("x")},
			err: `pods "x" is forbidden: violates PodSecurity "restricted:latest": restricted volume types (volume "h" uses restricted volume type "hostPath")`,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "restricted:latest",
				"pod-security.kubernetes.io/error": `Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted`}},
		{name: "an update that changes no image is not checked", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsRes, Namespace: ns, Name: "x", Obj: privilegedPod("x"), Old: privilegedPod("x")}},
		{name: "an image update is", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsRes, Namespace: ns, Name: "x", Obj: privilegedPod("x"),
				Old: func() *corev1.Pod { p := privilegedPod("x"); p.Spec.Containers[0].Image = "old"; return p }()},
			err:         `pods "x" is forbidden: violates PodSecurity "restricted:latest": ` + privilegedRestricted,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "restricted:latest"}},
		{name: "status is not checked", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsRes, Sub: "status", Namespace: ns, Name: "x", Obj: privilegedPod("x"), Old: restrictedPod("x")}},
		{name: "deleting is not checked", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Delete, Resource: podsRes, Namespace: ns, Name: "x", Old: privilegedPod("x")}},
		{name: "baseline allows the sysctls 1.37 added", labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: sysctlPod("net.ipv4.tcp_notsent_lowat", "net.ipv4.tcp_rmem")},
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}},
		{name: "but not before 1.37", labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.36"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: sysctlPod("net.ipv4.tcp_notsent_lowat", "net.ipv4.tcp_rmem")},
			err:         `pods "x" is forbidden: violates PodSecurity "baseline:v1.36": forbidden sysctls (net.ipv4.tcp_notsent_lowat)`,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "baseline:v1.36"}},
		{name: "nor others", labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"},
			req:         &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: podsRes, Namespace: ns, Name: "x", Obj: sysctlPod("net.ipv4.tcp_slow_start_after_idle", "kernel.msgmax")},
			err:         `pods "x" is forbidden: violates PodSecurity "baseline:latest": forbidden sysctls (kernel.msgmax)`,
			annotations: map[string]string{"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}},
		{name: "a deployment is warned, never refused", labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: deploymentsRes, Namespace: ns, Name: "d", Obj: &appsv1.Deployment{
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: privilegedPod("").Spec}}}},
			warnings: []string{`299 - "would violate PodSecurity \"restricted:latest\": ` + strings.ReplaceAll(privilegedRestricted, `"`, `\"`) + `"`}},
		{name: "a deployment audited", labels: map[string]string{"pod-security.kubernetes.io/audit": "baseline"},
			req: &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: deploymentsRes, Namespace: ns, Name: "d", Obj: &appsv1.Deployment{
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: hostPathPod("").Spec}}}},
			annotations: map[string]string{"pod-security.kubernetes.io/audit-violations": `would violate PodSecurity "baseline:latest": hostPath volumes (volume "h")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPodSecurity(t, map[string]map[string]string{ns: tc.labels})
			got := admit(p, tc.req)
			if tc.err != "" {
				if !apierrors.IsForbidden(got.err) || got.err.Error() != tc.err {
					t.Errorf("got  %v\nwant 403 %s", got.err, tc.err)
				}
			} else if got.err != nil {
				t.Errorf("refused: %v", got.err)
			}
			if diff := cmp.Diff(tc.warnings, got.warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.annotations, got.annotations); diff != "" {
				t.Errorf("audit annotations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodSecurityNamespaces(t *testing.T) {
	owned := func(p *corev1.Pod, uid string) corev1.Pod {
		p.OwnerReferences = []metav1.OwnerReference{{UID: types.UID("rs-" + uid), Controller: ptr.To(true), Name: "rs", Kind: "ReplicaSet", APIVersion: "apps/v1"}}
		return *p
	}
	existing := []corev1.Pod{
		*hostPathPod("b-host"), *privilegedPod("z-priv"), owned(privilegedPod("a-priv"), "1"), owned(privilegedPod("c-priv"), "1"),
		*restrictedPod("fine"),
	}
	ns := func(labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: labels}}
	}
	for _, tc := range []struct {
		name     string
		req      *apiserver.AdmissionRequest
		err      string
		code     int32
		warnings []string
	}{
		{name: "create with an invalid level",
			req:  &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: namespacesRes, Name: "ns", Obj: ns(map[string]string{"pod-security.kubernetes.io/enforce": "bogus"})},
			code: 422, err: `Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted`},
		{name: "create with an invalid version",
			req:  &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: namespacesRes, Name: "ns", Obj: ns(map[string]string{"pod-security.kubernetes.io/warn-version": "1.2"})},
			code: 422, err: `Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.2": must be "latest" or "v1.x"`},
		{name: "create valid",
			req: &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: namespacesRes, Name: "ns", Obj: ns(map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})}},
		{name: "update keeps invalid labels as they were",
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: namespacesRes, Name: "ns",
				Obj: ns(map[string]string{"pod-security.kubernetes.io/enforce": "bogus", "team": "a"}), Old: ns(map[string]string{"pod-security.kubernetes.io/enforce": "bogus"})}},
		{name: "update to an invalid level",
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: namespacesRes, Name: "ns",
				Obj: ns(map[string]string{"pod-security.kubernetes.io/audit": "strict"}), Old: ns(nil)},
			code: 422, err: `Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "strict": must be one of privileged, baseline, restricted`},
		{name: "raising enforce warns about existing pods",
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: namespacesRes, Name: "ns",
				Obj: ns(map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}), Old: ns(nil)},
			warnings: []string{
				`299 - "existing pods in namespace \"ns\" violate the new PodSecurity enforce level \"baseline:latest\""`,
				`299 - "a-priv (and 2 other pods): privileged"`,
				`299 - "b-host: hostPath volumes"`,
			}},
		{name: "lowering enforce does not",
			req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: namespacesRes, Name: "ns",
				Obj: ns(map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}), Old: ns(map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPodSecurity(t, nil, existing...)
			for i := range p.Pods.(podStore).pods {
				p.Pods.(podStore).pods[i].Namespace = "ns"
			}
			got := admit(p, tc.req)
			if tc.err != "" {
				st, ok := got.err.(apierrors.APIStatus)
				if !ok || st.Status().Code != tc.code || got.err.Error() != tc.err {
					t.Errorf("got  %v\nwant %d %s", got.err, tc.code, tc.err)
				}
			} else if got.err != nil {
				t.Errorf("refused: %v", got.err)
			}
			if diff := cmp.Diff(tc.warnings, got.warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
