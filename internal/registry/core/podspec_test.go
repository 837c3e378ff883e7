package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestValidatePodSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(s *corev1.PodSpec)
		want   []string
	}{
		{name: "valid", mutate: func(s *corev1.PodSpec) {}},
		{name: "valid full", mutate: func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](0o644)}}},
			}
			c := &s.Containers[0]
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
			c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "POD", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['app']"}}}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/etc/cfg"}}
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
			s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ImagePullPolicy: corev1.PullAlways,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile}}
			s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			s.NodeName = "node-1.example"
			s.NodeSelector = map[string]string{"disk": "ssd"}
		}},
		{name: "no containers", mutate: func(s *corev1.PodSpec) { s.Containers = nil },
			want: []string{"FieldValueRequired spec.containers"}},
		{name: "no image", mutate: func(s *corev1.PodSpec) { s.Containers[0].Image = "" },
			want: []string{"FieldValueRequired spec.containers[0].image"}},
		{name: "bad container name", mutate: func(s *corev1.PodSpec) { s.Containers[0].Name = "App_1" },
			want: []string{"FieldValueInvalid spec.containers[0].name"}},
		{name: "duplicate container name", mutate: func(s *corev1.PodSpec) {
			s.Containers = append(s.Containers, s.Containers[0])
		}, want: []string{"FieldValueDuplicate spec.containers[1].name"}},
		{name: "init container name clashes", mutate: func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{s.Containers[0]}
		}, want: []string{"FieldValueDuplicate spec.initContainers[0].name"}},
		{name: "port out of range and duplicate name", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{
				{Name: "http", ContainerPort: 70000, Protocol: corev1.ProtocolTCP},
				{Name: "http", ContainerPort: 81, Protocol: "HTTP"},
			}
		}, want: []string{
			"FieldValueInvalid spec.containers[0].ports[0].containerPort",
			"FieldValueDuplicate spec.containers[0].ports[1].name",
			"FieldValueNotSupported spec.containers[0].ports[1].protocol",
		}},
		{name: "env name", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{{Name: "A=B"}, {Name: ""}}
		}, want: []string{"FieldValueInvalid spec.containers[0].env[0].name", "FieldValueRequired spec.containers[0].env[1].name"}},
		{name: "env fieldRef unknown path", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.hostname"}}}}
		}, want: []string{"FieldValueNotSupported spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"}},
		{name: "requests above limits", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			}
		}, want: []string{"FieldValueInvalid spec.containers[0].resources.requests"}},
		{name: "negative quantity and unknown resource", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1"), "gpu": resource.MustParse("1")},
			}
		}, want: []string{"FieldValueInvalid spec.containers[0].resources.limits[cpu]", "FieldValueInvalid spec.containers[0].resources.limits[gpu]"}},
		{name: "extended resource must be whole", mutate: func(s *corev1.PodSpec) {
			q := resource.MustParse("500m")
			s.Containers[0].Resources = corev1.ResourceRequirements{
				Limits: corev1.ResourceList{"example.com/gpu": q}, Requests: corev1.ResourceList{"example.com/gpu": q},
			}
		}, want: []string{"FieldValueInvalid spec.containers[0].resources.limits[example.com/gpu]", "FieldValueInvalid spec.containers[0].resources.requests[example.com/gpu]"}},
		{name: "volumes duplicate, two sources, none", mutate: func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}},
				{Name: "c"},
			}
		}, want: []string{
			"FieldValueDuplicate spec.volumes[1].name",
			"FieldValueForbidden spec.volumes[2].hostPath",
			"FieldValueRequired spec.volumes[3]",
		}},
		{name: "mount of unknown volume", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "missing", MountPath: "/m"}}
		}, want: []string{"FieldValueNotFound spec.containers[0].volumeMounts[0].name"}},
		{name: "restart and dns policy", mutate: func(s *corev1.PodSpec) {
			s.RestartPolicy = "Sometimes"
			s.DNSPolicy = ""
		}, want: []string{"FieldValueNotSupported spec.restartPolicy", "FieldValueRequired spec.dnsPolicy"}},
		{name: "probe two handlers", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				Exec:      &corev1.ExecAction{Command: []string{"true"}},
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)},
			}}
		}, want: []string{"FieldValueForbidden spec.containers[0].readinessProbe.tcpSocket"}},
		{name: "probe no handler, liveness success threshold", mutate: func(s *corev1.PodSpec) {
			s.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2}
		}, want: []string{"FieldValueRequired spec.containers[0].livenessProbe", "FieldValueInvalid spec.containers[0].livenessProbe.successThreshold"}},
		{name: "init container probe", mutate: func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ImagePullPolicy: corev1.PullAlways,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ReadinessProbe:           &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}, want: []string{"FieldValueForbidden spec.initContainers[0].readinessProbe"}},
		{name: "node name", mutate: func(s *corev1.PodSpec) { s.NodeName = "Node_1" },
			want: []string{"FieldValueInvalid spec.nodeName"}},
		{name: "tolerations", mutate: func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{
				{Operator: corev1.TolerationOpEqual, Value: "x"},
				{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr.To[int64](5)},
				{Key: "k", Effect: "Sometimes"},
			}
		}, want: []string{
			"FieldValueInvalid spec.tolerations[0].operator",
			"FieldValueInvalid spec.tolerations[1].effect",
			"FieldValueNotSupported spec.tolerations[2].effect",
		}},
		{name: "affinity", mutate: func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}},
				PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 0, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
				}}},
			}
		}, want: []string{
			"FieldValueRequired spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
			"FieldValueInvalid spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
			"FieldValueRequired spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
			// An empty key fails both label-name rules, as upstream.
			"FieldValueInvalid spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
			"FieldValueInvalid spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
		}},
		{name: "grace period missing", mutate: func(s *corev1.PodSpec) { s.TerminationGracePeriodSeconds = nil },
			want: []string{"FieldValueRequired spec.terminationGracePeriodSeconds"}},
		{name: "dnsNone without config", mutate: func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSNone },
			want: []string{"FieldValueRequired spec.dnsConfig"}},
		{name: "active deadline", mutate: func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](0) },
			want: []string{"FieldValueInvalid spec.activeDeadlineSeconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := validPod()
			tc.mutate(&pod.Spec)
			assertErrKeys(t, ValidatePodSpec(&pod.Spec, &pod.ObjectMeta, field.NewPath("spec")), tc.want...)
		})
	}
}

func TestValidatePodTemplateSpec(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	DefaultPodTemplateSpec(tmpl)
	p := field.NewPath("spec", "template")
	assertErrKeys(t, ValidatePodTemplateSpec(tmpl, p))

	tmpl.Labels["bad key!"] = "x"
	tmpl.Spec.Containers[0].Image = ""
	assertErrKeys(t, ValidatePodTemplateSpec(tmpl, p),
		"FieldValueInvalid spec.template.labels",
		"FieldValueRequired spec.template.spec.containers[0].image")

	assertErrKeys(t, ValidatePodTemplateSpec(nil, p), "FieldValueRequired spec.template")
	assertErrKeys(t, ValidatePodSpec(nil, nil, field.NewPath("spec")), "FieldValueRequired spec")
}

// TestValidateSysctls: names are checked against upstream's pattern, with
// upstream's message, which the conformance test "should reject invalid
// sysctls" matches.
func TestValidateSysctls(t *testing.T) {
	const msg = `must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`
	for _, tc := range []struct {
		names []string
		want  []string // "<type> <field>: <detail>" of each error
	}{
		{names: []string{"kernel.shm_rmid_forced", "net/ipv4/ip_forward", "safe-and-unsafe", "kernel.shmmax"}},
		{names: []string{"foo-", "kernel.shmmax", "safe-and-unsafe", "bar.."}, want: []string{
			"FieldValueInvalid sysctls[0].name: " + msg,
			"FieldValueInvalid sysctls[3].name: " + msg,
		}},
		{names: []string{"Kernel.Shmmax", ".net", "net..a", "a/"}, want: []string{
			"FieldValueInvalid sysctls[0].name: " + msg, "FieldValueInvalid sysctls[1].name: " + msg,
			"FieldValueInvalid sysctls[2].name: " + msg, "FieldValueInvalid sysctls[3].name: " + msg,
		}},
		{names: []string{"a." + strings.Repeat("b", 252)}, want: []string{"FieldValueInvalid sysctls[0].name: " + msg}},
		{names: []string{"", "kernel.sem", "kernel.sem"}, want: []string{
			"FieldValueRequired sysctls[0].name: ", "FieldValueDuplicate sysctls[2].name: ",
		}},
	} {
		sc := &corev1.PodSecurityContext{}
		for _, n := range tc.names {
			sc.Sysctls = append(sc.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
		}
		var got []string
		for _, e := range validatePodSecurityContext(sc, nil) {
			got = append(got, fmt.Sprintf("%s %s: %s", string(e.Type), e.Field, e.Detail))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("sysctls %q:\ngot  %q\nwant %q", tc.names, got, tc.want)
		}
	}
}
