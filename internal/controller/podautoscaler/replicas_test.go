package podautoscaler

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// Unless a case says otherwise, a pod started ten minutes before t0 (past
// the cpu initialization period), has been Ready since 20s after it
// started, and has one container "app" requesting 1 cpu; its sample was
// taken 15s before t0 over a 30s window.
var (
	podStart = t0.Add(-10 * time.Minute)
	sampleAt = t0.Add(-15 * time.Second)
)

type podOpt func(*corev1.Pod)

func newPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:      "app",
			Resources: corev1.ResourceRequirements{Requests: cpu(1000)},
		}}},
		Status: corev1.PodStatus{
			Phase:     corev1.PodRunning,
			StartTime: &metav1.Time{Time: podStart},
			Conditions: []corev1.PodCondition{{
				Type:               corev1.PodReady,
				Status:             corev1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(podStart.Add(20 * time.Second)),
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// pods returns web-0 … web-(n-1), each with opts.
func pods(n int, opts ...podOpt) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = newPod(fmt.Sprintf("web-%d", i), opts...)
	}
	return out
}

func cpu(milli int64) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(milli, resource.DecimalSI)}
}

func memory(q string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(q)}
}

// requesting sets what container "app" requests.
func requesting(rl corev1.ResourceList) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests = rl }
}

// startedAt moves the start, and the readiness transition with it.
func startedAt(start time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.StartTime = &metav1.Time{Time: start}
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(start.Add(20 * time.Second))
	}
}

// readiness sets the Ready condition and when it last changed.
func readiness(status corev1.ConditionStatus, since time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions[0].Status = status
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(since)
	}
}

// neverReady: unready since 10s after the start, i.e. never ready yet.
func neverReady(p *corev1.Pod) {
	readiness(corev1.ConditionFalse, p.Status.StartTime.Add(10*time.Second))(p)
}

func inPhase(phase corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = phase
		if phase == corev1.PodPending {
			p.Status.StartTime = nil
			p.Status.Conditions = nil
		}
	}
}

func deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: t0.Add(-time.Second)} }

// usage returns samples for web-0, web-1, …; -1 leaves a pod without one.
func usage(values ...int64) map[string]Sample {
	out := map[string]Sample{}
	for i, v := range values {
		if v >= 0 {
			out[fmt.Sprintf("web-%d", i)] = Sample{Value: v, Timestamp: sampleAt, Window: 30 * time.Second}
		}
	}
	return out
}

func utilization(name corev1.ResourceName, pct int32) ResourceMetric {
	return ResourceMetric{Name: name, Target: autoscalingv2.MetricTarget{
		Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct,
	}}
}

func averageValue(name corev1.ResourceName, q string) ResourceMetric {
	v := resource.MustParse(q)
	return ResourceMetric{Name: name, Target: autoscalingv2.MetricTarget{
		Type: autoscalingv2.AverageValueMetricType, AverageValue: &v,
	}}
}

func pct(v int32) *int32 { return &v }

// Each case states how its number follows from the algorithm: u is the
// ready pods' utilization (their usage over their requests, truncated),
// r = u/target the ratio, and the proposal ceil(r × pods counted). Cases
// marked "upstream" are cases of upstream's replica_calculator_test.go.
func TestResourceReplicas(t *testing.T) {
	tests := []struct {
		name       string
		current    int32
		metric     ResourceMetric
		pods       []*corev1.Pod
		usage      map[string]Sample
		tolerances *Tolerances
		want       ResourceRecommendation
		wantErr    string
	}{
		{
			// upstream "scale up": u = 1500/3000 = 50%, r = 50/30, ceil(1.67×3) = 5.
			name:    "scale up",
			current: 3, metric: utilization(corev1.ResourceCPU, 30),
			pods: pods(3), usage: usage(300, 500, 700),
			want: ResourceRecommendation{Replicas: 5, Utilization: pct(50), AverageValue: 500},
		},
		{
			// upstream "scale down": u = 1400/5000 = 28%, r = 0.56, ceil(0.56×5) = 3.
			name:    "scale down",
			current: 5, metric: utilization(corev1.ResourceCPU, 50),
			pods: pods(5), usage: usage(100, 300, 500, 250, 250),
			want: ResourceRecommendation{Replicas: 3, Utilization: pct(28), AverageValue: 280},
		},
		{
			// upstream "within default tolerance": u = 3060/3000 = 102%, r = 1.02.
			name:    "within tolerance keeps the current count",
			current: 3, metric: utilization(corev1.ResourceCPU, 100),
			pods: []*corev1.Pod{
				newPod("web-0", requesting(cpu(900))), newPod("web-1"), newPod("web-2", requesting(cpu(1100))),
			},
			usage: usage(1010, 1030, 1020),
			want:  ResourceRecommendation{Replicas: 3, Utilization: pct(102), AverageValue: 1020},
		},
		{
			// u = 110%, r = 1.1 = 1 + tolerance: the bound is inclusive.
			name:    "ratio on the tolerance bound keeps the current count",
			current: 3, metric: utilization(corev1.ResourceCPU, 100),
			pods: pods(3), usage: usage(1100, 1100, 1100),
			want: ResourceRecommendation{Replicas: 3, Utilization: pct(110), AverageValue: 1100},
		},
		{
			// u = 111%, r = 1.11 > 1.1, ceil(1.11×3) = 4.
			name:    "ratio past the tolerance scales",
			current: 3, metric: utilization(corev1.ResourceCPU, 100),
			pods: pods(3), usage: usage(1110, 1110, 1110),
			want: ResourceRecommendation{Replicas: 4, Utilization: pct(111), AverageValue: 1110},
		},
		{
			// upstream "outside 34% scale-down tolerance": u = 65%, r = 0.65
			// < 1-0.34, ceil(0.65×3) = 2.
			name:    "per-HPA scale-down tolerance exceeded",
			current: 3, metric: utilization(corev1.ResourceCPU, 100),
			pods: pods(3), usage: usage(660, 640, 650),
			tolerances: &Tolerances{ScaleDown: 0.34, ScaleUp: 0.1},
			want:       ResourceRecommendation{Replicas: 2, Utilization: pct(65), AverageValue: 650},
		},
		{
			// upstream "within 36% scale-down tolerance": 0.65 ≥ 1-0.36.
			name:    "per-HPA scale-down tolerance not exceeded",
			current: 3, metric: utilization(corev1.ResourceCPU, 100),
			pods: pods(3), usage: usage(660, 640, 650),
			tolerances: &Tolerances{ScaleDown: 0.36, ScaleUp: 0.1},
			want:       ResourceRecommendation{Replicas: 3, Utilization: pct(65), AverageValue: 650},
		},
		{
			// upstream "some pods missing metrics scales down": u = 990/4000
			// = 24%, r = 0.24; the two missing pods count at their full
			// request: 4990/8000 = 62%, ceil(0.62×4) = 3.
			name:    "missing pods count at their request on a scale-down",
			current: 4, metric: utilization(corev1.ResourceCPU, 100),
			pods: pods(4, requesting(cpu(2000))), usage: usage(800, 190, -1, -1),
			want: ResourceRecommendation{Replicas: 3, Utilization: pct(24), AverageValue: 495},
		},
		{
			// u = 2000/2000 = 100%, r = 2; web-0 counts as 0: 2000/3000 =
			// 66%, r = 1.32, ceil(1.32×3) = 4.
			name:    "missing pods count as idle on a scale-up",
			current: 3, metric: utilization(corev1.ResourceCPU, 50),
			pods: pods(3), usage: usage(-1, 1000, 1000),
			want: ResourceRecommendation{Replicas: 4, Utilization: pct(100), AverageValue: 1000},
		},
		{
			// u = 1200/2000 = 60%, r = 1.2; with the missing pods idle
			// 1200/4000 = 30%, r = 0.6 turns the scale-up around.
			name:    "missing pods that turn a scale-up around keep the current count",
			current: 4, metric: utilization(corev1.ResourceCPU, 50),
			pods: pods(4), usage: usage(600, 600, -1, -1),
			want: ResourceRecommendation{Replicas: 4, Utilization: pct(60), AverageValue: 600},
		},
		{
			// upstream "rolling update with maxSurge: extra pod missing
			// metric": u = 10%, r = 0.2; the surge pod at its request gives
			// 1200/3000 = 40%, r = 0.8, ceil(0.8×3) = 3 > 2: a scale-down
			// ratio proposing growth keeps the count.
			name:    "missing surge pod that would grow a scale-down keeps the current count",
			current: 2, metric: utilization(corev1.ResourceCPU, 50),
			pods: pods(3), usage: usage(100, 100, -1),
			want: ResourceRecommendation{Replicas: 2, Utilization: pct(10), AverageValue: 100},
		},
		{
			// upstream "scale down: target over 100", with other requests:
			// web-0 is not yet ready; u = 400/3000 = 13%, r = 13/300; the
			// missing web-3 counts at 300% of its 2000m request: 6400/5000
			// = 128%, r = 0.43, ceil(0.43×3) = 2 (at 100% it would be 1).
			name:    "missing pods count at a target over 100% on a scale-down",
			current: 4, metric: utilization(corev1.ResourceCPU, 300),
			pods: []*corev1.Pod{
				newPod("web-0", neverReady), newPod("web-1"),
				newPod("web-2", requesting(cpu(2000))), newPod("web-3", requesting(cpu(2000))),
			},
			usage: usage(400, 200, 200, -1),
			want:  ResourceRecommendation{Replicas: 2, Utilization: pct(13), AverageValue: 200},
		},
		{
			// upstream "scale up: unready pod scales less": u = 1200/2000 =
			// 60%, r = 2; web-0 counts as idle: 40%, ceil(1.33×3) = 4.
			name:    "not-yet-ready pod counts as idle on a scale-up",
			current: 3, metric: utilization(corev1.ResourceCPU, 30),
			pods:  []*corev1.Pod{newPod("web-0", neverReady), newPod("web-1"), newPod("web-2")},
			usage: usage(300, 500, 700),
			want:  ResourceRecommendation{Replicas: 4, Utilization: pct(60), AverageValue: 600},
		},
		{
			// upstream "no scale: unready pods ignored": u = 40%, r = 1.33;
			// with two idle pods 400/3000 = 13%, r = 0.43 turns around.
			name:    "not-yet-ready pods that turn a scale-up around keep the current count",
			current: 3, metric: utilization(corev1.ResourceCPU, 30),
			pods:  []*corev1.Pod{newPod("web-0"), newPod("web-1", neverReady), newPod("web-2", neverReady)},
			usage: usage(400, 500, 700),
			want:  ResourceRecommendation{Replicas: 3, Utilization: pct(40), AverageValue: 400},
		},
		{
			// upstream "scale down: exclude unready pods": u = 900/3000 =
			// 30%, r = 0.6, ceil(0.6×3) = 2; not-yet-ready pods stay out.
			name:    "scale-down leaves not-yet-ready pods out",
			current: 5, metric: utilization(corev1.ResourceCPU, 50),
			pods: []*corev1.Pod{
				newPod("web-0"), newPod("web-1"), newPod("web-2"), newPod("web-3", neverReady), newPod("web-4", neverReady),
			},
			usage: usage(100, 300, 500, 250, 250),
			want:  ResourceRecommendation{Replicas: 2, Utilization: pct(30), AverageValue: 300},
		},
		{
			// upstream "scale down: exclude unscheduled pods": pending pods
			// are not yet ready, not missing; u = 10%, ceil(0.2×1) = 1.
			name:    "pending pods are not yet ready",
			current: 5, metric: utilization(corev1.ResourceCPU, 50),
			pods: append(pods(1), newPod("web-1", inPhase(corev1.PodPending)), newPod("web-2", inPhase(corev1.PodPending)),
				newPod("web-3", inPhase(corev1.PodPending)), newPod("web-4", inPhase(corev1.PodPending))),
			usage: usage(100),
			want:  ResourceRecommendation{Replicas: 1, Utilization: pct(10), AverageValue: 100},
		},
		{
			// web-0 started a minute ago and has been ready for 20s; its
			// sample (taken 15s ago over 30s) began before it was ready, so
			// it is set aside: as "not-yet-ready pod counts as idle", 4.
			// Counting it would give 70%, 7 replicas.
			name:    "cpu sample not a full window after readiness is set aside",
			current: 3, metric: utilization(corev1.ResourceCPU, 30),
			pods: []*corev1.Pod{
				newPod("web-0", startedAt(t0.Add(-time.Minute)), readiness(corev1.ConditionTrue, t0.Add(-20*time.Second))),
				newPod("web-1"), newPod("web-2"),
			},
			usage: usage(900, 500, 700),
			want:  ResourceRecommendation{Replicas: 4, Utilization: pct(60), AverageValue: 600},
		},
		{
			// web-0 has been ready for 50s, so its sample covers a full
			// window of readiness and counts: 2100/3000 = 70%, r = 1.4,
			// ceil(1.4×3) = 5.
			name:    "cpu sample a full window after readiness counts",
			current: 3, metric: utilization(corev1.ResourceCPU, 50),
			pods: []*corev1.Pod{
				newPod("web-0", startedAt(t0.Add(-time.Minute)), readiness(corev1.ConditionTrue, t0.Add(-50*time.Second))),
				newPod("web-1"), newPod("web-2"),
			},
			usage: usage(900, 500, 700),
			want:  ResourceRecommendation{Replicas: 5, Utilization: pct(70), AverageValue: 700},
		},
		{
			// web-0 is unready within its initialization period: u = 60%,
			// r = 1.2; counted idle, 1200/3000 = 40%, r = 0.8 turns around.
			name:    "cpu: unready pod within the initialization period is set aside",
			current: 3, metric: utilization(corev1.ResourceCPU, 50),
			pods: []*corev1.Pod{
				newPod("web-0", startedAt(t0.Add(-time.Minute)), readiness(corev1.ConditionFalse, t0.Add(-50*time.Second))),
				newPod("web-1"), newPod("web-2"),
			},
			usage: usage(900, 500, 700),
			want:  ResourceRecommendation{Replicas: 3, Utilization: pct(60), AverageValue: 600},
		},
		{
			// web-0 turned unready 8 minutes after it started, long past the
			// initial readiness delay: it has been ready, so its sample
			// counts: 70%, r = 1.4, 5.
			name:    "cpu: pod unready after having been ready counts",
			current: 3, metric: utilization(corev1.ResourceCPU, 50),
			pods: []*corev1.Pod{
				newPod("web-0", readiness(corev1.ConditionFalse, t0.Add(-2*time.Minute))),
				newPod("web-1"), newPod("web-2"),
			},
			usage: usage(900, 500, 700),
			want:  ResourceRecommendation{Replicas: 5, Utilization: pct(70), AverageValue: 700},
		},
		{
			// Readiness rules are cpu's: the never-ready web-0 counts for
			// memory. 2.4G/3G = 80%, r = 1.6, ceil(1.6×3) = 5 (without it,
			// 90% and 4).
			name:    "memory counts pods that are not ready",
			current: 3, metric: utilization(corev1.ResourceMemory, 50),
			pods: []*corev1.Pod{
				newPod("web-0", requesting(memory("1G")), neverReady),
				newPod("web-1", requesting(memory("1G"))), newPod("web-2", requesting(memory("1G"))),
			},
			usage: usage(600e9, 800e9, 1000e9), // millibytes
			want:  ResourceRecommendation{Replicas: 5, Utilization: pct(80), AverageValue: 800e9},
		},
		{
			// Mean 750M over a 500M target: r = 1.5, ceil(1.5×4) = 6. An
			// average value needs no request.
			name:    "memory average value",
			current: 4, metric: averageValue(corev1.ResourceMemory, "500M"),
			pods: pods(4), usage: usage(600e9, 700e9, 800e9, 900e9),
			want: ResourceRecommendation{Replicas: 6, AverageValue: 750e9},
		},
		{
			// Mean 200m over 500m: r = 0.4; the missing pods count at the
			// target: (200+200+500+500)/4 = 350m, r = 0.7, ceil(0.7×4) = 3.
			name:    "average value counts missing pods at the target on a scale-down",
			current: 4, metric: averageValue(corev1.ResourceCPU, "500m"),
			pods: pods(4), usage: usage(200, 200, -1, -1),
			want: ResourceRecommendation{Replicas: 3, AverageValue: 200},
		},
		{
			// Mean 1000m over 500m: r = 2; web-0 counted idle: 2000/3 =
			// 666m, r = 1.332, ceil(1.332×3) = 4.
			name:    "average value counts not-yet-ready pods as idle on a scale-up",
			current: 3, metric: averageValue(corev1.ResourceCPU, "500m"),
			pods:  []*corev1.Pod{newPod("web-0", neverReady), newPod("web-1"), newPod("web-2")},
			usage: usage(1000, 1000, 1000),
			want:  ResourceRecommendation{Replicas: 4, AverageValue: 1000},
		},
		{
			// The app containers use 1500m of their 1500m: 100%, r = 2,
			// ceil(2×3) = 6. Against whole pods (3000m) it would be 50%
			// and 3.
			name:    "container resource is measured against the container's request",
			current: 3,
			metric: ResourceMetric{Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.UtilizationMetricType, AverageUtilization: pct(50),
			}},
			pods: pods(3, requesting(cpu(500)), func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
					Name: "sidecar", Resources: corev1.ResourceRequirements{Requests: cpu(500)},
				})
			}),
			usage: usage(300, 500, 700),
			want:  ResourceRecommendation{Replicas: 6, Utilization: pct(100), AverageValue: 500},
		},
		{
			name:    "container resource on a pod without the container fails",
			current: 3,
			metric: ResourceMetric{Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.UtilizationMetricType, AverageUtilization: pct(50),
			}},
			pods:    append(pods(2), newPod("web-2", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "other" })),
			usage:   usage(300, 500, 700),
			wantErr: "container app not found in Pod web-2",
		},
		{
			// upstream "scale up: pods being deleted are ignored", with
			// samples for them: 1200/2000 = 60%, r = 2, ceil(2×2) = 4.
			name:    "pods being deleted are ignored",
			current: 2, metric: utilization(corev1.ResourceCPU, 30),
			pods:  append(pods(2), newPod("web-2", deleting), newPod("web-3", deleting)),
			usage: usage(500, 700, 9000, 9000),
			want:  ResourceRecommendation{Replicas: 4, Utilization: pct(60), AverageValue: 600},
		},
		{
			// upstream "scale up: failed pods ignored" and "succeeded pods
			// ignored": as above, 4; counted as missing they would give 30%
			// and no change. Unlike upstream, web-2's lack of a request does
			// not matter.
			name:    "terminated pods are ignored",
			current: 2, metric: utilization(corev1.ResourceCPU, 30),
			pods: append(pods(2),
				newPod("web-2", inPhase(corev1.PodFailed), requesting(nil)),
				newPod("web-3", inPhase(corev1.PodSucceeded))),
			usage: usage(500, 700),
			want:  ResourceRecommendation{Replicas: 4, Utilization: pct(60), AverageValue: 600},
		},
		{
			// The pod requests 600m (app) + 400m (a sidecar); the plain init
			// container does not count. 1500/1000 = 150%, r = 3, 3.
			name:    "sidecar requests count, init container requests do not",
			current: 1, metric: utilization(corev1.ResourceCPU, 50),
			pods: pods(1, requesting(cpu(600)), func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{
					{Name: "init"},
					{Name: "proxy", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: cpu(400)}},
				}
			}),
			usage: usage(1500),
			want:  ResourceRecommendation{Replicas: 3, Utilization: pct(150), AverageValue: 1500},
		},
		{
			// The pod-level request (2000m) wins over app's 500m: 50%, r =
			// 1, no change (against 500m it would be 200% and 4).
			name:    "pod-level request",
			current: 1, metric: utilization(corev1.ResourceCPU, 50),
			pods: pods(1, requesting(cpu(500)), func(p *corev1.Pod) {
				p.Spec.Resources = &corev1.ResourceRequirements{Requests: cpu(2000)}
			}),
			usage: usage(1000),
			want:  ResourceRecommendation{Replicas: 1, Utilization: pct(50), AverageValue: 1000},
		},
		{
			name:    "missing request fails",
			current: 2, metric: utilization(corev1.ResourceCPU, 50),
			pods:    []*corev1.Pod{newPod("web-0"), newPod("web-1", requesting(memory("1G")))},
			usage:   usage(500, 500),
			wantErr: "missing request for cpu in container app of Pod web-1",
		},
		{
			name:    "no pods",
			current: 2, metric: utilization(corev1.ResourceCPU, 50),
			usage:   usage(500, 500),
			wantErr: ErrNoPods.Error(),
		},
		{
			name:    "no ready pod has a sample",
			current: 2, metric: utilization(corev1.ResourceCPU, 50),
			pods:    pods(2, neverReady),
			usage:   usage(500, 500),
			wantErr: ErrNoMetrics.Error(),
		},
		{
			// The sample of a pod that is gone does not count: mean 600m
			// over 300m, r = 2, ceil(2×2) = 4 (with it, a mean of 3400m).
			name:    "samples of pods not listed are dropped",
			current: 2, metric: averageValue(corev1.ResourceCPU, "300m"),
			pods: pods(2),
			usage: func() map[string]Sample {
				u := usage(500, 700)
				u["web-old"] = Sample{Value: 9000, Timestamp: sampleAt, Window: 30 * time.Second}
				return u
			}(),
			want: ResourceRecommendation{Replicas: 4, AverageValue: 600},
		},
		{
			// The ready samples were taken 15s and 40s ago; web-2's older
			// one is set aside with it. u = 50%, r = 1.
			name:    "timestamp is that of the oldest sample used",
			current: 3, metric: utilization(corev1.ResourceCPU, 50),
			pods: []*corev1.Pod{newPod("web-0"), newPod("web-1"), newPod("web-2", neverReady)},
			usage: map[string]Sample{
				"web-0": {Value: 500, Timestamp: sampleAt, Window: 30 * time.Second},
				"web-1": {Value: 500, Timestamp: t0.Add(-40 * time.Second), Window: 30 * time.Second},
				"web-2": {Value: 500, Timestamp: t0.Add(-90 * time.Second), Window: 30 * time.Second},
			},
			want: ResourceRecommendation{Replicas: 3, Utilization: pct(50), AverageValue: 500, Timestamp: t0.Add(-40 * time.Second)},
		},
		{
			name:    "target without a value fails",
			current: 2, metric: ResourceMetric{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType}},
			pods:    pods(2),
			usage:   usage(500, 500),
			wantErr: "neither an average utilization target nor an average value",
		},
	}

	cfg := DefaultConfig()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ResourceInput{
				CurrentReplicas: tc.current,
				Metric:          tc.metric,
				Pods:            tc.pods,
				Usage:           tc.usage,
				Tolerances:      cfg.Tolerances(nil),
			}
			if tc.tolerances != nil {
				in.Tolerances = *tc.tolerances
			}
			got, err := cfg.ResourceReplicas(in, t0)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := tc.want
			if want.Timestamp.IsZero() {
				want.Timestamp = sampleAt
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("recommendation (-want +got):\n%s", diff)
			}
		})
	}
}

// ResourceReplicas must not modify the pods it is given: they come from
// the informer's cache.
func TestResourceReplicasLeavesPodsAlone(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := newPod("web-0", func(p *corev1.Pod) {
		p.Spec.Containers = append(make([]corev1.Container, 0, 4), p.Spec.Containers...)
		p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: cpu(400)}}}
	})
	before := p.DeepCopy()
	if _, err := DefaultConfig().ResourceReplicas(ResourceInput{
		CurrentReplicas: 1, Metric: utilization(corev1.ResourceCPU, 50), Pods: []*corev1.Pod{p}, Usage: usage(700),
	}, t0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, p); diff != "" {
		t.Errorf("pod changed (-before +after):\n%s", diff)
	}
	if got := p.Spec.Containers[:cap(p.Spec.Containers)][1].Name; got != "" {
		t.Errorf("sidecar %q written into the pod's container array", got)
	}
}

func TestErrorsAreSentinels(t *testing.T) {
	_, err := DefaultConfig().ResourceReplicas(ResourceInput{
		CurrentReplicas: 1, Metric: utilization(corev1.ResourceCPU, 50), Pods: pods(1, neverReady), Usage: usage(1),
	}, t0)
	if !errors.Is(err, ErrNoMetrics) {
		t.Errorf("error = %v, want ErrNoMetrics", err)
	}
}

func TestResourceMetricFor(t *testing.T) {
	target := autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: pct(60)}
	tests := []struct {
		spec   autoscalingv2.MetricSpec
		want   ResourceMetric
		wantOK bool
	}{
		{
			spec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory, Target: target}},
			want: ResourceMetric{Name: corev1.ResourceMemory, Target: target}, wantOK: true,
		},
		{
			spec: autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType,
				ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: corev1.ResourceCPU, Container: "app", Target: target}},
			want: ResourceMetric{Name: corev1.ResourceCPU, Container: "app", Target: target}, wantOK: true,
		},
		{
			spec: autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{}},
		},
	}
	for _, tc := range tests {
		got, ok := ResourceMetricFor(tc.spec)
		if ok != tc.wantOK || !cmp.Equal(got, tc.want) {
			t.Errorf("ResourceMetricFor(%s) = %+v, %v; want %+v, %v", tc.spec.Type, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestConfigTolerances(t *testing.T) {
	up := resource.MustParse("0.05")
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{Tolerance: &up}}
	cfg := DefaultConfig()
	if got, want := cfg.Tolerances(b), (Tolerances{ScaleDown: 0.1, ScaleUp: 0.05}); got != want {
		t.Errorf("Tolerances(scaleUp 0.05) = %+v, want %+v", got, want)
	}
	if got, want := cfg.Tolerances(nil), (Tolerances{ScaleDown: 0.1, ScaleUp: 0.1}); got != want {
		t.Errorf("Tolerances(nil) = %+v, want %+v", got, want)
	}
}
