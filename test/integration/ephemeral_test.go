package integration

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// pods/ephemeralcontainers as upstream serves it, and as `kubectl debug`
// and the conformance tests "Ephemeral Containers will start an ephemeral
// container in an existing pod" and "should update the ephemeral
// containers in an existing pod" use it: discovery lists it; GET returns
// the pod; a strategic merge patch (the e2e framework's
// AddEphemeralContainerSync) and a PUT (UpdateEphemeralContainers) add
// containers, defaulted, bumping the generation and changing nothing
// else; existing ones can be neither removed nor changed, new ones are
// validated, and a static pod's mirror takes none (422 each). The main
// resource refuses to create a pod with them or to change them. No
// kubelet runs: the pods are bound to a node by name.
func TestEphemeralContainersAPI(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "eph")
	pods := cs.CoreV1().Pods("eph")
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	podsGVR := schema.GroupVersionResource{Version: "v1", Resource: "pods"}

	// Discovery, as kubectl and upstream's conformance read it.
	rl, err := cs.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rl.APIResources {
		if r.Name == "pods/ephemeralcontainers" {
			found = true
			if r.Kind != "Pod" || strings.Join(r.Verbs, ",") != "get,patch,update" {
				t.Errorf("discovery of pods/ephemeralcontainers: kind %q verbs %v, want Pod [get patch update]", r.Kind, r.Verbs)
			}
		}
	}
	if !found {
		t.Error("discovery does not list pods/ephemeralcontainers")
	}

	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "target", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:   "n1",
			Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36", Command: []string{"sleep", "3600"}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	getEphemeral := func(t *testing.T) *corev1.Pod {
		t.Helper()
		u, err := dyn.Resource(podsGVR).Namespace("eph").Get(ctx, "target", metav1.GetOptions{}, "ephemeralcontainers")
		if err != nil {
			t.Fatalf("GET pods/target/ephemeralcontainers: %v", err)
		}
		p := &corev1.Pod{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := getEphemeral(t); p.Name != "target" || p.Kind != "Pod" || len(p.Spec.EphemeralContainers) != 0 {
		t.Fatalf("GET of the subresource: kind %q name %q with %d ephemeral containers, want the pod with none", p.Kind, p.Name, len(p.Spec.EphemeralContainers))
	}

	// The e2e framework's AddEphemeralContainerSync: a two-way strategic
	// merge patch from the pod to the pod with one more ephemeral
	// container. Here the new pod also changes a label and the image of a
	// container, which the subresource must not write.
	t.Run("strategic merge patch adds one and changes nothing else", func(t *testing.T) {
		from, _ := json.Marshal(pod)
		to := pod.DeepCopy()
		to.Labels["app"] = "changed"
		to.Spec.Containers[0].Image = "busybox:1.37"
		to.Spec.EphemeralContainers = append(to.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debugger", Image: "busybox:1.36", Command: []string{"sh", "-c", "while true; do echo polo; sleep 2; done"},
				Stdin: true, TTY: true,
			},
			TargetContainerName: "app",
		})
		toJSON, _ := json.Marshal(to)
		patch, err := strategicpatch.CreateTwoWayMergePatch(from, toJSON, pod)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pods.Patch(ctx, "target", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
		if err != nil {
			t.Fatalf("patch pods/target/ephemeralcontainers: %v", err)
		}
		if len(got.Spec.EphemeralContainers) != 1 {
			t.Fatalf("after the patch: %d ephemeral containers, want 1", len(got.Spec.EphemeralContainers))
		}
		ec := got.Spec.EphemeralContainers[0]
		if ec.Name != "debugger" || ec.TargetContainerName != "app" || ec.ImagePullPolicy != corev1.PullIfNotPresent ||
			ec.TerminationMessagePolicy != corev1.TerminationMessageReadFile || ec.TerminationMessagePath != "/dev/termination-log" {
			t.Errorf("ephemeral container as stored (want it defaulted): %+v", ec)
		}
		if got.Generation != 2 {
			t.Errorf("generation after adding an ephemeral container = %d, want 2", got.Generation)
		}
		if got.Labels["app"] != "web" || got.Spec.Containers[0].Image != "busybox:1.36" {
			t.Errorf("the subresource wrote more than ephemeral containers: labels %v, image %q", got.Labels, got.Spec.Containers[0].Image)
		}
		if p := getEphemeral(t); len(p.Spec.EphemeralContainers) != 1 || p.Spec.EphemeralContainers[0].Name != "debugger" {
			t.Errorf("GET of the subresource after the patch: %+v", p.Spec.EphemeralContainers)
		}
	})

	// The conformance test's UpdateEphemeralContainers: a PUT of the pod
	// with one more.
	t.Run("update adds another", func(t *testing.T) {
		cur, err := pods.Get(ctx, "target", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.EphemeralContainers = append(cur.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debugger2", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			},
		})
		got, err := pods.UpdateEphemeralContainers(ctx, "target", cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update pods/target/ephemeralcontainers: %v", err)
		}
		if len(got.Spec.EphemeralContainers) != 2 || got.Generation != 3 {
			t.Fatalf("after the update: %d ephemeral containers, generation %d; want 2 and 3", len(got.Spec.EphemeralContainers), got.Generation)
		}
		if p := getEphemeral(t); len(p.Spec.EphemeralContainers) != 2 {
			t.Errorf("GET of the subresource after the update: %d ephemeral containers, want 2", len(p.Spec.EphemeralContainers))
		}
	})

	// wantInvalid checks a 422 whose causes include one of type typ at
	// path, and whose message contains msg.
	wantInvalid := func(t *testing.T, err error, typ metav1.CauseType, path, msg string) {
		t.Helper()
		if !apierrors.IsInvalid(err) {
			t.Fatalf("want 422 Invalid, got %v", err)
		}
		st := err.(apierrors.APIStatus).Status()
		if st.Code != 422 || st.Details == nil {
			t.Fatalf("status %+v", st)
		}
		for _, cause := range st.Details.Causes {
			if cause.Type == typ && cause.Field == path && strings.Contains(cause.Message, msg) {
				return
			}
		}
		t.Fatalf("422 without a %s cause at %s containing %q: %+v", typ, path, msg, st.Details.Causes)
	}
	updateEphemeral := func(t *testing.T, change func(*corev1.Pod)) error {
		t.Helper()
		cur, err := pods.Get(ctx, "target", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		change(cur)
		_, err = pods.UpdateEphemeralContainers(ctx, "target", cur, metav1.UpdateOptions{})
		return err
	}

	t.Run("existing ones cannot be removed", func(t *testing.T) {
		err := updateEphemeral(t, func(p *corev1.Pod) { p.Spec.EphemeralContainers = p.Spec.EphemeralContainers[:1] })
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers", `existing ephemeral containers "debugger2" may not be removed`)
	})
	t.Run("existing ones cannot be changed", func(t *testing.T) {
		err := updateEphemeral(t, func(p *corev1.Pod) { p.Spec.EphemeralContainers[0].Image = "busybox:1.37" })
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers", `existing ephemeral containers "debugger" may not be changed`)
	})

	for _, tc := range []struct {
		name   string
		ec     corev1.EphemeralContainer
		typ    metav1.CauseType
		field  string
		substr string
	}{
		{"ports", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].ports", "cannot be set for an Ephemeral Container"},
		{"resources", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].resources", "cannot be set for an Ephemeral Container"},
		{"liveness probe", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].livenessProbe", "cannot be set for an Ephemeral Container"},
		{"readiness probe", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].readinessProbe", "cannot be set for an Ephemeral Container"},
		{"lifecycle", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].lifecycle", "cannot be set for an Ephemeral Container"},
		{"restart policy", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].restartPolicy", "cannot be set for an Ephemeral Container"},
		{"subPath", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v", SubPath: "x"}}}},
			metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers[2].volumeMounts[0].subPath", "cannot be set for an Ephemeral Container"},
		{"name of a container", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "app"}},
			metav1.CauseType(field.ErrorTypeDuplicate), "spec.ephemeralContainers[2].name", ""},
		{"name of another ephemeral container", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger"}},
			metav1.CauseType(field.ErrorTypeDuplicate), "spec.ephemeralContainers[2].name", ""},
		{"unknown target", corev1.EphemeralContainer{TargetContainerName: "nope"},
			metav1.CauseType(field.ErrorTypeNotFound), "spec.ephemeralContainers[2].targetContainerName", ""},
		{"ephemeral target", corev1.EphemeralContainer{TargetContainerName: "debugger"},
			metav1.CauseType(field.ErrorTypeNotFound), "spec.ephemeralContainers[2].targetContainerName", ""},
		{"no image", corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Image: "-"}},
			metav1.CauseType(field.ErrorTypeRequired), "spec.ephemeralContainers[2].image", ""},
	} {
		t.Run("a new one with "+tc.name+" is refused", func(t *testing.T) {
			ec := tc.ec
			if ec.Name == "" {
				ec.Name = "bad"
			}
			switch ec.Image {
			case "":
				ec.Image = "busybox:1.36"
			case "-":
				ec.Image = ""
			}
			err := updateEphemeral(t, func(p *corev1.Pod) {
				p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
			})
			wantInvalid(t, err, tc.typ, tc.field, tc.substr)
		})
	}

	t.Run("the main resource cannot change them", func(t *testing.T) {
		cur, err := pods.Get(ctx, "target", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		add := cur.DeepCopy()
		add.Spec.EphemeralContainers = append(add.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "sneaky", Image: "busybox:1.36"}})
		_, err = pods.Update(ctx, add, metav1.UpdateOptions{})
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "spec", "pod updates may not change fields other than")
		remove := cur.DeepCopy()
		remove.Spec.EphemeralContainers = nil
		_, err = pods.Update(ctx, remove, metav1.UpdateOptions{})
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "spec", "pod updates may not change fields other than")
		patch := []byte(`{"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox:1.37"}]}}`)
		_, err = pods.Patch(ctx, "target", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "spec", "pod updates may not change fields other than")
		// An update that keeps them as they are goes through.
		keep := cur.DeepCopy()
		keep.Spec.Containers[0].Image = "busybox:1.37"
		got, err := pods.Update(ctx, keep, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("main update keeping the ephemeral containers: %v", err)
		}
		if len(got.Spec.EphemeralContainers) != 2 {
			t.Fatalf("main update dropped ephemeral containers: %+v", got.Spec.EphemeralContainers)
		}
	})

	t.Run("create refuses them", func(t *testing.T) {
		_, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "born-with-one"},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36"}},
				EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
					Name: "debugger", Image: "busybox:1.36"}}},
			},
		}, metav1.CreateOptions{})
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "spec.ephemeralContainers", "cannot be set on create")
	})

	t.Run("a static pod's mirror takes none", func(t *testing.T) {
		mirror, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "static-n1", Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "x"}},
			Spec: corev1.PodSpec{
				NodeName:   "n1",
				Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36"}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mirror.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debugger", Image: "busybox:1.36"}}}
		_, err = pods.UpdateEphemeralContainers(ctx, mirror.Name, mirror, metav1.UpdateOptions{})
		// Upstream reports it at field.NewPath(""), which prints as "[]".
		wantInvalid(t, err, metav1.CauseType(field.ErrorTypeForbidden), "[]", "static pods do not support ephemeral containers")
	})
}
