package apiserver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/openapi"
)

// bothConverters returns a storageless server and two type converters for
// its definitions: the library's and typedConverter.
func bothConverters(t testing.TB) (*Server, managedfields.TypeConverter, *typedConverter) {
	t.Helper()
	s := storagelessServer(t)
	defs := withListMapKeyDefaults(openapi.Definitions(s.openAPIResources()))
	lib, err := managedfields.NewTypeConverter(defs, false)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := newTypedConverter(defs)
	if err != nil {
		t.Fatal(err)
	}
	return s, lib, ours
}

// The shortcut must not change a single recorded field: for creates and
// updates of typical and awkward objects (duplicate env names, ports,
// volumes, a status write), the FieldManager on typedConverter records
// exactly what it records on the library's converter.
func TestTypedConverterRecordsWhatTheLibraryRecords(t *testing.T) {
	s, lib, ours := bothConverters(t)
	conv := objectConverter{s: s}

	pod := func(image string) runtime.Object {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"app": "a"}, Annotations: map[string]string{"note": image}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "c", Image: image,
					Env:   []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}, {Name: "B", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
					Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
					VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v"}},
				}},
				Volumes:     []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				Tolerations: []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)}},
			},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	deploy := func(replicas int32) runtime.Object {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(replicas),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromString("25%"))}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
			},
		}
	}
	svc := func(port int32) runtime.Object {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "a"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			}},
		}
	}
	lease := func(holder string) runtime.Object {
		now := metav1.NewMicroTime(metav1.Now().Time)
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "kube-node-lease"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
		}
	}
	cases := []struct {
		name     string
		resource string
		sub      string
		before   runtime.Object // nil: a create
		after    runtime.Object
	}{
		{"create pod", "pods", "", nil, pod("busybox:1")},
		{"update pod", "pods", "", pod("busybox:1"), pod("busybox:2")},
		{"pod status", "pods", "status", pod("busybox:1"), func() runtime.Object {
			p := pod("busybox:1").(*corev1.Pod)
			p.Status.PodIP = "10.42.0.9"
			return p
		}()},
		{"create deployment", "deployments", "", nil, deploy(3)},
		{"scale deployment", "deployments", "", deploy(3), deploy(5)},
		{"create service", "services", "", nil, svc(80)},
		{"update service", "services", "", svc(80), svc(81)},
		{"renew lease", "leases", "", lease("n1"), lease("n2")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sv *served
			for gvr, v := range s.resources {
				if gvr.Resource == tc.resource && v.res.Create == nil {
					sv = v
				}
			}
			if sv == nil {
				t.Fatalf("no resource %s", tc.resource)
			}
			gvk := sv.res.GroupVersionKind()
			if _, ok := ours.types[gvk]; !ok {
				t.Fatalf("typedConverter has no shortcut for %v: the case would compare the library with itself", gvk)
			}
			record := func(tc2 managedfields.TypeConverter) []metav1.ManagedFieldsEntry {
				fm, err := managedfields.NewDefaultFieldManager(tc2, conv, conv, conv, gvk, gvk.GroupVersion(), tc.sub, s.resetFields(sv, tc.sub))
				if err != nil {
					t.Fatal(err)
				}
				empty := func() runtime.Object {
					o := sv.res.New()
					o.GetObjectKind().SetGroupVersionKind(gvk)
					return o
				}
				live := empty()
				if tc.before != nil {
					live = tc.before.DeepCopyObject()
					live.GetObjectKind().SetGroupVersionKind(gvk)
					if live, err = fm.Update(empty(), live, "creator"); err != nil {
						t.Fatal(err)
					}
				}
				live.GetObjectKind().SetGroupVersionKind(gvk)
				obj := tc.after.DeepCopyObject()
				obj.GetObjectKind().SetGroupVersionKind(gvk)
				m, _ := meta.Accessor(obj)
				lm, _ := meta.Accessor(live)
				m.SetManagedFields(lm.GetManagedFields())
				out, err := fm.Update(live, obj, "writer")
				if err != nil {
					t.Fatal(err)
				}
				om, _ := meta.Accessor(out)
				entries := om.GetManagedFields()
				for i := range entries {
					entries[i].Time = nil
				}
				return entries
			}
			want, got := record(lib), record(ours)
			if len(want) == 0 {
				t.Fatal("the library recorded nothing: the case tests nothing")
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("managedFields differ (-library +ours):\n%s", d)
			}
		})
	}
}

// BenchmarkRecordCreate measures recording the managedFields of a pod
// create, on the library's type converter and on typedConverter.
func BenchmarkRecordCreate(b *testing.B) {
	s, lib, ours := bothConverters(b)
	sv := s.resources[corev1.SchemeGroupVersion.WithResource("pods")]
	gvk := sv.res.GroupVersionKind()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"app": "a"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
		}}}}},
	}
	sv.res.Strategy.Default(pod)
	pod.SetGroupVersionKind(gvk)
	for name, tc := range map[string]managedfields.TypeConverter{"library": lib, "typedConverter": ours} {
		b.Run(name, func(b *testing.B) {
			conv := objectConverter{s: s}
			fm, err := managedfields.NewDefaultFieldManager(tc, conv, conv, conv, gvk, gvk.GroupVersion(), "", s.resetFields(sv, ""))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				live := sv.res.New()
				live.GetObjectKind().SetGroupVersionKind(gvk)
				if _, err := fm.Update(live, pod.DeepCopy(), "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// An apply mixes both kinds of value, the applied configuration
// (unstructured) and the live object (a Go type): they must come from one
// schema, or structured-merge-diff refuses to merge them.
func TestTypedConverterApplies(t *testing.T) {
	s, lib, ours := bothConverters(t)
	sv := s.resources[corev1.SchemeGroupVersion.WithResource("configmaps")]
	gvk := sv.res.GroupVersionKind()
	apply := func(tc managedfields.TypeConverter) []metav1.ManagedFieldsEntry {
		conv := objectConverter{s: s}
		fm, err := managedfields.NewDefaultFieldManager(tc, conv, conv, conv, gvk, gvk.GroupVersion(), "", s.resetFields(sv, ""))
		if err != nil {
			t.Fatal(err)
		}
		live := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"a": "1"}}
		live.SetGroupVersionKind(gvk)
		created, err := fm.Update(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"}}, live, "creator")
		if err != nil {
			t.Fatal(err)
		}
		created.GetObjectKind().SetGroupVersionKind(gvk)
		patch := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "default"},
			"data": map[string]any{"b": "2"},
		}}
		out, err := fm.Apply(created, patch, "applier", false)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		m, _ := meta.Accessor(out)
		entries := m.GetManagedFields()
		for i := range entries {
			entries[i].Time = nil
		}
		return entries
	}
	want, got := apply(lib), apply(ours)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("managedFields after apply differ (-library +ours):\n%s", d)
	}
}
