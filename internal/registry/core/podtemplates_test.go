package core

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newPodTemplate() *corev1.PodTemplate {
	return &corev1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "tmpl", Namespace: "default"},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", Image: "nginx"}, {Name: "sidecar", Image: "envoy:1"}}},
		},
	}
}

func TestPodTemplateDefaults(t *testing.T) {
	pt := newPodTemplate()
	PodTemplates().Strategy.Default(pt)
	want := newPodTemplate()
	DefaultPodSpec(&want.Template.Spec)
	if diff := cmp.Diff(want, pt); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if pt.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways || pt.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("pod spec not defaulted: %+v", pt.Template.Spec)
	}
	// Unlike a pod, a template does not get requests copied from limits.
	if pt.Template.Spec.EnableServiceLinks != nil {
		t.Errorf("enableServiceLinks defaulted on a template: %v", *pt.Template.Spec.EnableServiceLinks)
	}
}

func TestPodTemplateValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(pt *corev1.PodTemplate)
		want   []string
	}{
		{"valid", func(*corev1.PodTemplate) {}, nil},
		// Any restart policy: only the workloads around a template
		// restrict it.
		{"restart never", func(pt *corev1.PodTemplate) { pt.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }, nil},
		{"no image", func(pt *corev1.PodTemplate) { pt.Template.Spec.Containers[0].Image = "" },
			[]string{"FieldValueRequired template.spec.containers[0].image"}},
		{"no containers", func(pt *corev1.PodTemplate) { pt.Template.Spec.Containers = nil },
			[]string{"FieldValueRequired template.spec.containers"}},
		{"bad label", func(pt *corev1.PodTemplate) { pt.Template.Labels["bad key!"] = "x" },
			[]string{"FieldValueInvalid template.labels"}},
		{"ephemeral containers", func(pt *corev1.PodTemplate) {
			pt.Template.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox", ImagePullPolicy: corev1.PullAlways, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}}
		}, []string{"FieldValueForbidden template.spec.ephemeralContainers"}},
	}
	res := PodTemplates()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := newPodTemplate()
			res.Strategy.Default(pt)
			tt.mutate(pt)
			assertErrKeys(t, res.Strategy.Validate(pt), tt.want...)
			assertErrKeys(t, res.Strategy.ValidateUpdate(pt, newPodTemplate()), tt.want...)
		})
	}
}

// metadata.generation starts at 1 and counts changes to the template,
// not to the template's metadata outside it.
func TestPodTemplateGeneration(t *testing.T) {
	res := PodTemplates()
	ctx := context.Background()
	pt := newPodTemplate()
	pt.Generation = 5
	res.Strategy.PrepareForCreate(ctx, pt)
	res.Strategy.Default(pt)
	if pt.Generation != 1 {
		t.Fatalf("generation after create %d, want 1", pt.Generation)
	}
	tests := []struct {
		name   string
		mutate func(pt *corev1.PodTemplate)
		want   int64
	}{
		{"labels of the object", func(pt *corev1.PodTemplate) { pt.Labels = map[string]string{"x": "y"} }, 1},
		{"defaults omitted", func(pt *corev1.PodTemplate) { pt.Template.Spec.SchedulerName = "" }, 1},
		{"image", func(pt *corev1.PodTemplate) { pt.Template.Spec.Containers[0].Image = "nginx:1.28" }, 2},
		{"template labels", func(pt *corev1.PodTemplate) { pt.Template.Labels = map[string]string{"app": "db"} }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upd := pt.DeepCopy()
			upd.Generation = 30
			tt.mutate(upd)
			res.Strategy.PrepareForUpdate(ctx, upd, pt)
			if upd.Generation != tt.want {
				t.Errorf("generation %d, want %d", upd.Generation, tt.want)
			}
		})
	}
}

func TestPodTemplateTable(t *testing.T) {
	res := PodTemplates()
	var names []string
	for _, c := range res.Table.Columns {
		names = append(names, c.Name)
		if c.Priority != 0 {
			t.Errorf("column %s has priority %d: upstream shows every column", c.Name, c.Priority)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Containers", "Images", "Pod Labels"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := []interface{}{"tmpl", "web,sidecar", "nginx,envoy:1", "app=web,tier=front"}
	if diff := cmp.Diff(want, res.Table.Row(newPodTemplate())); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	want = []interface{}{"empty", "", "", "<none>"}
	if diff := cmp.Diff(want, res.Table.Row(&corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "empty"}})); diff != "" {
		t.Errorf("row of an empty template (-want +got):\n%s", diff)
	}
}
