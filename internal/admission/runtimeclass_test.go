package admission

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// runtimeClasses is a storage.Interface holding RuntimeClasses by name;
// only Get is used by the plugin.
type runtimeClasses struct {
	storage.Interface
	byName map[string]*nodev1.RuntimeClass
}

func (r runtimeClasses) Get(_ context.Context, key, _ string, out runtime.Object) error {
	rc, ok := r.byName[key]
	if !ok {
		return storage.ErrNotFound
	}
	rc.DeepCopyInto(out.(*nodev1.RuntimeClass))
	return nil
}

func TestRuntimeClassAdmission(t *testing.T) {
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("1Mi")}
	rc := &RuntimeClass{Key: func(name string) string { return name }, Classes: runtimeClasses{byName: map[string]*nodev1.RuntimeClass{
		"plain": {ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Handler: "runc"},
		"heavy": {ObjectMeta: metav1.ObjectMeta{Name: "heavy"}, Handler: "runc", Overhead: &nodev1.Overhead{PodFixed: overhead}},
		"placed": {ObjectMeta: metav1.ObjectMeta{Name: "placed"}, Handler: "runc", Scheduling: &nodev1.Scheduling{
			NodeSelector: map[string]string{"sandbox": "yes"},
			Tolerations: []corev1.Toleration{
				{Key: "sandbox", Operator: corev1.TolerationOpExists},
				{Key: "gpu", Operator: corev1.TolerationOpEqual, Value: "a", Effect: corev1.TaintEffectNoSchedule},
			},
		}},
	}}}
	podsRes := &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "pods"}
	tests := []struct {
		name      string
		class     *string
		mutate    func(*corev1.Pod)
		op        apiserver.Operation
		want      func(*corev1.Pod) // the pod as admitted
		forbidden string            // from Admit or Validation
	}{
		{name: "no class", want: func(*corev1.Pod) {}},
		{name: "no class, overhead", mutate: func(p *corev1.Pod) { p.Spec.Overhead = overhead },
			forbidden: "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"},
		{name: "missing class", class: ptr.To("nope"), forbidden: `pod rejected: RuntimeClass "nope" not found`},
		{name: "missing class, update ignored", class: ptr.To("nope"), op: apiserver.Update, want: func(*corev1.Pod) {}},
		{name: "plain", class: ptr.To("plain"), want: func(*corev1.Pod) {}},
		{name: "overhead copied", class: ptr.To("heavy"), want: func(p *corev1.Pod) { p.Spec.Overhead = overhead }},
		{name: "same overhead kept", class: ptr.To("heavy"), mutate: func(p *corev1.Pod) { p.Spec.Overhead = overhead.DeepCopy() },
			want: func(p *corev1.Pod) { p.Spec.Overhead = overhead }},
		{name: "other overhead refused", class: ptr.To("heavy"),
			mutate: func(p *corev1.Pod) {
				p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
			},
			forbidden: "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"},
		{name: "overhead on a class without", class: ptr.To("plain"), mutate: func(p *corev1.Pod) { p.Spec.Overhead = overhead },
			forbidden: "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"},
		{name: "scheduling merged", class: ptr.To("placed"),
			mutate: func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"zone": "a"}
				p.Spec.Tolerations = []corev1.Toleration{
					{Key: "sandbox", Operator: corev1.TolerationOpEqual, Value: "x"}, // covered by the class's Exists
					{Key: "other", Operator: corev1.TolerationOpExists},
				}
			},
			want: func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"zone": "a", "sandbox": "yes"}
				p.Spec.Tolerations = []corev1.Toleration{
					{Key: "other", Operator: corev1.TolerationOpExists},
					{Key: "sandbox", Operator: corev1.TolerationOpExists},
					{Key: "gpu", Operator: corev1.TolerationOpEqual, Value: "a", Effect: corev1.TaintEffectNoSchedule},
				}
			}},
		{name: "selector conflict", class: ptr.To("placed"), mutate: func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"sandbox": "no"} },
			forbidden: "conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{RuntimeClassName: tt.class}}
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			want := pod.DeepCopy()
			op := tt.op
			if op == "" {
				op = apiserver.Create
			}
			req := &apiserver.AdmissionRequest{Operation: op, Resource: podsRes, Namespace: "ns", Name: "p", Obj: pod}
			err := rc.Admit(context.Background(), req)
			if err == nil {
				err = rc.Validation().Admit(context.Background(), req)
			}
			if tt.forbidden != "" {
				if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tt.forbidden) {
					t.Fatalf("want 403 %q, got %v", tt.forbidden, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want(want)
			if diff := cmp.Diff(want.Spec, pod.Spec); diff != "" {
				t.Errorf("pod spec (-want +got):\n%s", diff)
			}
		})
	}
}

// A wider toleration drops the narrower ones it covers, in either list;
// equal ones are kept once.
func TestMergeTolerations(t *testing.T) {
	secs := func(s int64) *int64 { return &s }
	exists := corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists}
	equal := corev1.Toleration{Key: "k", Operator: corev1.TolerationOpEqual, Value: "v"}
	everything := corev1.Toleration{Operator: corev1.TolerationOpExists}
	short := corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(10)}
	long := corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(60)}
	for _, tt := range []struct {
		name          string
		first, second []corev1.Toleration
		want          []corev1.Toleration
	}{
		{"empty", nil, nil, nil},
		{"disjoint", []corev1.Toleration{equal}, []corev1.Toleration{{Key: "j", Operator: corev1.TolerationOpExists}},
			[]corev1.Toleration{equal, {Key: "j", Operator: corev1.TolerationOpExists}}},
		{"duplicate", []corev1.Toleration{equal}, []corev1.Toleration{equal}, []corev1.Toleration{equal}},
		{"exists covers equal", []corev1.Toleration{equal}, []corev1.Toleration{exists}, []corev1.Toleration{exists}},
		{"everything covers all", []corev1.Toleration{equal, exists}, []corev1.Toleration{everything}, []corev1.Toleration{everything}},
		{"shorter seconds covered by longer", []corev1.Toleration{long}, []corev1.Toleration{short}, []corev1.Toleration{long}},
		{"forever covers seconds", []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}, []corev1.Toleration{short},
			[]corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, mergeTolerations(tt.first, tt.second)); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
		})
	}
}
