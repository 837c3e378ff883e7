package core

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/registry"
)

// validRC returns a defaulted, valid ReplicationController of two
// replicas selecting app=web.
func validRC() *corev1.ReplicationController {
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](2),
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
	defaultReplicationController(rc)
	return rc
}

func TestReplicationControllerDefaults(t *testing.T) {
	tmplLabels := map[string]string{"app": "web", "tier": "front"}
	tests := []struct {
		name         string
		rc           corev1.ReplicationController
		wantSelector map[string]string
		wantLabels   map[string]string
	}{
		{"from template", corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels}}}},
			tmplLabels, tmplLabels},
		{"own selector and labels kept", corev1.ReplicationController{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"owner": "me"}},
			Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "web"},
				Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels}}}},
			map[string]string{"app": "web"}, map[string]string{"owner": "me"}},
		{"template without labels", corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{
			Template: &corev1.PodTemplateSpec{}}},
			nil, nil},
		{"no template", corev1.ReplicationController{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := tt.rc.DeepCopy()
			defaultReplicationController(rc)
			if diff := cmp.Diff(tt.wantSelector, rc.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLabels, rc.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if rc.Spec.Replicas == nil || *rc.Spec.Replicas != 1 {
				t.Errorf("replicas = %v, want 1", rc.Spec.Replicas)
			}
			if rc.Spec.Template != nil && (rc.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways ||
				rc.Spec.Template.Spec.TerminationGracePeriodSeconds == nil) {
				t.Errorf("template pod spec not defaulted: %+v", rc.Spec.Template.Spec)
			}
		})
	}

	// The selector is a copy: a later change to the template's labels
	// does not move it.
	rc := tests[0].rc.DeepCopy()
	defaultReplicationController(rc)
	rc.Spec.Template.Labels["app"] = "db"
	if rc.Spec.Selector["app"] != "web" || rc.Labels["app"] != "web" {
		t.Errorf("selector %v and labels %v share the template's map", rc.Spec.Selector, rc.Labels)
	}
	// Replicas set to 0 stays 0.
	zero := validRC()
	zero.Spec.Replicas = ptr.To[int32](0)
	defaultReplicationController(zero)
	if *zero.Spec.Replicas != 0 {
		t.Errorf("replicas 0 defaulted to %d", *zero.Spec.Replicas)
	}
}

func TestReplicationControllerValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(rc *corev1.ReplicationController)
		want   []string
	}{
		{"valid", func(*corev1.ReplicationController) {}, nil},
		{"no selector", func(rc *corev1.ReplicationController) {
			rc.Spec.Selector = nil
		}, []string{"FieldValueRequired spec.selector"}},
		{"selector does not match", func(rc *corev1.ReplicationController) {
			rc.Spec.Selector = map[string]string{"app": "db"}
		}, []string{"FieldValueInvalid spec.template.metadata.labels"}},
		{"negative replicas", func(rc *corev1.ReplicationController) {
			rc.Spec.Replicas = ptr.To[int32](-1)
		}, []string{"FieldValueInvalid spec.replicas"}},
		{"no replicas", func(rc *corev1.ReplicationController) {
			rc.Spec.Replicas = nil
		}, []string{"FieldValueRequired spec.replicas"}},
		{"negative minReadySeconds", func(rc *corev1.ReplicationController) {
			rc.Spec.MinReadySeconds = -1
		}, []string{"FieldValueInvalid spec.minReadySeconds"}},
		{"no template", func(rc *corev1.ReplicationController) {
			rc.Spec.Template = nil
		}, []string{"FieldValueRequired spec.template"}},
		{"restart policy", func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}, []string{"FieldValueNotSupported spec.template.spec.restartPolicy"}},
		{"active deadline", func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](10)
		}, []string{"FieldValueForbidden spec.template.spec.activeDeadlineSeconds"}},
		{"pod spec rules", func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.Containers[0].Image = ""
		}, []string{"FieldValueRequired spec.template.spec.containers[0].image"}},
	}
	res := ReplicationControllers()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := validRC()
			tt.mutate(rc)
			assertErrKeys(t, res.Strategy.Validate(rc), tt.want...)
			// Updates run the same rules; the selector may change.
			assertErrKeys(t, res.Strategy.ValidateUpdate(rc, validRC()), tt.want...)
		})
	}

	// Upstream's messages.
	rc := validRC()
	rc.Spec.Selector = map[string]string{"app": "db"}
	rc.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](10)
	got := res.Strategy.Validate(rc).ToAggregate().Error()
	for _, want := range []string{
		"spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
		"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q lack %q", got, want)
		}
	}

	// A new selector on update is fine when the template follows.
	moved := validRC()
	moved.Spec.Selector = map[string]string{"app": "db"}
	moved.Spec.Template.Labels = map[string]string{"app": "db"}
	assertErrKeys(t, res.Strategy.ValidateUpdate(moved, validRC()))
}

func TestReplicationControllerValidateStatus(t *testing.T) {
	tests := []struct {
		name   string
		status corev1.ReplicationControllerStatus
		want   []string
	}{
		{"valid", corev1.ReplicationControllerStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 4}, nil},
		{"negative", corev1.ReplicationControllerStatus{FullyLabeledReplicas: -1, ObservedGeneration: -1},
			[]string{"FieldValueInvalid status.fullyLabeledReplicas", "FieldValueInvalid status.observedGeneration"}},
		{"above replicas", corev1.ReplicationControllerStatus{Replicas: 1, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2},
			[]string{"FieldValueInvalid status.fullyLabeledReplicas", "FieldValueInvalid status.readyReplicas", "FieldValueInvalid status.availableReplicas"}},
		{"available above ready", corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2},
			[]string{"FieldValueInvalid status.availableReplicas"}},
	}
	res := ReplicationControllers()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := validRC()
			rc.Status = tt.status
			assertErrKeys(t, res.Strategy.ValidateStatusUpdate(rc, validRC()), tt.want...)
		})
	}
	rc := validRC()
	rc.Status = corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2}
	if got, want := res.Strategy.ValidateStatusUpdate(rc, rc).ToAggregate().Error(),
		"status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// Create resets status and starts at generation 1; an update keeps status
// and bumps the generation only when the spec changed.
func TestReplicationControllerGeneration(t *testing.T) {
	res := ReplicationControllers()
	ctx := context.Background()

	rc := validRC()
	rc.Status.Replicas = 9
	rc.Generation = 7
	if res.Strategy.PrepareForCreate != nil {
		t.Fatal("PrepareForCreate is set: this test checks the default")
	}
	registry.DefaultPrepareForCreate(ctx, rc)
	if rc.Status.Replicas != 0 || rc.Generation != 1 {
		t.Fatalf("after create: status.replicas %d, generation %d; want 0, 1", rc.Status.Replicas, rc.Generation)
	}
	rc.Status.Replicas = 2

	tests := []struct {
		name   string
		mutate func(rc *corev1.ReplicationController)
		want   int64
	}{
		{"labels only", func(rc *corev1.ReplicationController) { rc.Labels = map[string]string{"x": "y"} }, 1},
		{"defaults omitted", func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.TerminationGracePeriodSeconds = nil
			rc.Spec.Template.Spec.DNSPolicy = ""
		}, 1},
		{"replicas", func(rc *corev1.ReplicationController) { rc.Spec.Replicas = ptr.To[int32](5) }, 2},
		{"image", func(rc *corev1.ReplicationController) { rc.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upd := rc.DeepCopy()
			upd.Status = corev1.ReplicationControllerStatus{}
			upd.Generation = 40
			tt.mutate(upd)
			res.Strategy.PrepareForUpdate(ctx, upd, rc)
			if upd.Generation != tt.want {
				t.Errorf("generation %d, want %d", upd.Generation, tt.want)
			}
			if upd.Status.Replicas != 2 {
				t.Errorf("status not kept: %+v", upd.Status)
			}
		})
	}
}

func TestReplicationControllerScaleFieldsWarnings(t *testing.T) {
	res := ReplicationControllers()
	rc := validRC()
	rc.Spec.Selector = map[string]string{"app": "web", "tier": "front"}
	rc.Status.Replicas = 2
	spec, status, sel := res.Scale.Get(rc)
	if spec != 2 || status != 2 || sel != "app=web,tier=front" {
		t.Errorf("scale = %d, %d, %q; want 2, 2, %q", spec, status, sel, "app=web,tier=front")
	}
	res.Scale.SetReplicas(rc, 6)
	if *rc.Spec.Replicas != 6 {
		t.Errorf("after SetReplicas(6): %d", *rc.Spec.Replicas)
	}

	want := fields.Set{"metadata.name": "web", "metadata.namespace": "default", "status.replicas": "2"}
	if diff := cmp.Diff(want, res.Fields(rc)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}

	if w := res.Strategy.WarningsOnCreate(rc); len(w) != 0 {
		t.Errorf("warnings for a DNS label name: %v", w)
	}
	rc.Name = "web.v1"
	if w := res.Strategy.WarningsOnCreate(rc); len(w) != 1 || !strings.HasPrefix(w[0], "metadata.name: this is used in Pod names and hostnames") {
		t.Errorf("warnings for %q: %v", rc.Name, w)
	}
}

func TestReplicationControllerTable(t *testing.T) {
	res := ReplicationControllers()
	var names []string
	for _, c := range res.Table.Columns {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Desired", "Current", "Ready", "Age"}, names); diff != "" {
		t.Errorf("default columns (-want +got):\n%s", diff)
	}

	rc := validRC()
	rc.CreationTimestamp = metav1.NewTime(time.Now().Add(-3 * time.Hour))
	rc.Spec.Replicas = ptr.To[int32](3)
	rc.Spec.Template.Spec.Containers = append(rc.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "envoy:1"})
	rc.Status = corev1.ReplicationControllerStatus{Replicas: 2, ReadyReplicas: 1}
	want := []interface{}{"web", int64(3), int64(2), int64(1), "3h", "web,sidecar", "nginx:1.27,envoy:1", "app=web"}
	if diff := cmp.Diff(want, res.Table.Row(rc)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	empty := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "e", CreationTimestamp: rc.CreationTimestamp}}
	want = []interface{}{"e", int64(0), int64(0), int64(0), "3h", "", "", "<none>"}
	if diff := cmp.Diff(want, res.Table.Row(empty)); diff != "" {
		t.Errorf("row of an empty RC (-want +got):\n%s", diff)
	}
}
