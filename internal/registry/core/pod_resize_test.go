package core

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func resources(req, lim map[corev1.ResourceName]string) corev1.ResourceRequirements {
	conv := func(m map[corev1.ResourceName]string) corev1.ResourceList {
		if m == nil {
			return nil
		}
		out := corev1.ResourceList{}
		for k, v := range m {
			out[k] = resource.MustParse(v)
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: conv(req), Limits: conv(lim)}
}

// resizeBase is a running Burstable pod with two containers, as the
// kubelet reports it (container resources in status).
func resizeBase() *corev1.Pod {
	p := validPod()
	p.Spec.Containers = []corev1.Container{
		{Name: "c1", Image: "busybox:1.36", Resources: resources(map[corev1.ResourceName]string{"cpu": "20m", "memory": "35Mi"}, map[corev1.ResourceName]string{"cpu": "30m"})},
		{Name: "c2", Image: "busybox:1.36", Resources: resources(map[corev1.ResourceName]string{"cpu": "20m"}, nil)},
	}
	defaultPod(p)
	AdmitPod(p)
	p.Generation = 1
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, ObservedGeneration: 1}
	for _, c := range p.Spec.Containers {
		r := c.Resources.DeepCopy()
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, Resources: r,
		})
	}
	return p
}

// TestPodResize runs a resize write as the server does: PrepareForUpdate,
// then ValidateUpdate, and checks upstream's messages and the
// generation.
func TestPodResize(t *testing.T) {
	sub := Pods().Subresource(ResizeSubresource)
	if sub == nil {
		t.Fatal("pods has no resize subresource")
	}
	for _, tc := range []struct {
		name    string
		old     func(p *corev1.Pod)
		mutate  func(p *corev1.Pod)
		wantErr string // substring of the aggregated errors; "" is none
		wantGen int64
		check   func(t *testing.T, p *corev1.Pod)
	}{
		{name: "no change", mutate: func(p *corev1.Pod) {}, wantGen: 1},
		{name: "increase cpu and add a memory limit", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("25m")
			p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("50Mi")
		}, wantGen: 2},
		{name: "add memory request", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[1].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("35Mi")
		}, wantGen: 2},
		{name: "other fields and labels are dropped", mutate: func(p *corev1.Pod) {
			p.Labels = map[string]string{"x": "y"}
			p.Spec.Containers[0].Image = "nginx:1.27"
			p.Spec.ActiveDeadlineSeconds = new(int64)
			p.Status.Phase = corev1.PodFailed
		}, wantGen: 1, check: func(t *testing.T, p *corev1.Pod) {
			if p.Labels != nil || p.Spec.Containers[0].Image != "busybox:1.36" || p.Spec.ActiveDeadlineSeconds != nil || p.Status.Phase != corev1.PodRunning {
				t.Errorf("non-resize changes kept: labels %v image %q ads %v phase %s", p.Labels, p.Spec.Containers[0].Image, p.Spec.ActiveDeadlineSeconds, p.Status.Phase)
			}
		}},
		{name: "remove limits", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = nil
		}, wantErr: "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed", wantGen: 2},
		{name: "remove requests", mutate: func(p *corev1.Pod) {
			delete(p.Spec.Containers[1].Resources.Requests, corev1.ResourceCPU)
		}, wantErr: "spec.containers[1].resources.requests: Forbidden: resource requests cannot be removed"},
		{name: "reorder", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0], p.Spec.Containers[1] = p.Spec.Containers[1], p.Spec.Containers[0]
		}, wantErr: "spec.containers[0].name: Forbidden: containers may not be renamed or reordered on resize, spec.containers[1].name: Forbidden: containers may not be renamed or reordered on resize"},
		{name: "add a container", mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c3", Image: "busybox:1.36", TerminationMessagePolicy: "File", ImagePullPolicy: "IfNotPresent"})
		}, wantErr: "spec.containers: Forbidden: containers may not be added or removed on resize"},
		{name: "ephemeral storage", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[1].Resources.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
		}, wantErr: "spec: Forbidden: only cpu and memory resources are mutable"},
		{name: "qos class to guaranteed", mutate: func(p *corev1.Pod) {
			for i := range p.Spec.Containers {
				p.Spec.Containers[i].Resources = resources(map[corev1.ResourceName]string{"cpu": "20m", "memory": "35Mi"}, map[corev1.ResourceName]string{"cpu": "20m", "memory": "35Mi"})
			}
		}, wantErr: "Pod QOS Class may not change as a result of resizing"},
		{name: "resizePolicy", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.RestartContainer}}
		}, wantErr: "spec: Forbidden: only cpu and memory resources are mutable"},
		{name: "static pod", old: func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
			p.Spec.NodeName = "n1"
		}, mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("25m")
		}, wantErr: "Forbidden: static pods cannot be resized"},
		{name: "running on a kubelet without resize", old: func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].Resources = nil
		}, mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("25m")
		}, wantErr: "spec: Forbidden: Pod running on node without support for resize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := resizeBase()
			if tc.old != nil {
				tc.old(old)
			}
			obj := old.DeepCopy()
			tc.mutate(obj)
			sub.PrepareForUpdate(context.Background(), obj, old)
			errs := sub.ValidateUpdate(obj, old)
			got := errs.ToAggregate()
			switch {
			case tc.wantErr == "" && got != nil:
				t.Fatalf("unexpected errors: %v", got)
			case tc.wantErr != "" && (got == nil || !strings.Contains(got.Error(), tc.wantErr)):
				t.Fatalf("errors %v; want %q", got, tc.wantErr)
			}
			if tc.wantGen != 0 && obj.Generation != tc.wantGen {
				t.Errorf("generation %d, want %d", obj.Generation, tc.wantGen)
			}
			if tc.check != nil {
				tc.check(t, obj)
			}
		})
	}
}

func TestResizeErrorsAreFieldErrors(t *testing.T) {
	// Upstream's Status for a refused resize lists each cause by field;
	// the paths are the container's, not the pod's.
	old := resizeBase()
	obj := old.DeepCopy()
	obj.Spec.Containers[0].Resources.Limits = nil
	errs := validatePodResize(obj, old)
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeForbidden || errs[0].Field != "spec.containers[0].resources.limits" {
		t.Fatalf("errors %v", errs)
	}
}
