package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mount is runtimeapi.Mount without the protobuf internals, for cmp.
type mount struct {
	ContainerPath, HostPath string
	Readonly, Relabel       bool
	Propagation             runtimeapi.MountPropagation
}

func plainMounts(ms []*runtimeapi.Mount) []mount {
	out := make([]mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, mount{m.ContainerPath, m.HostPath, m.Readonly, m.SelinuxRelabel, m.Propagation})
	}
	return out
}

func TestMounts(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap("ns", "cfg", map[string]string{"app.conf": "x"}, nil)
	hostDir := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(hostDir, "escape")); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, src)
	pod := testPod(
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir}}},
		v1.Volume{Name: "nfs", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "nfs", Path: "/export"}}},
	)
	_ = m.SetUp(context.Background(), pod) // the nfs volume fails; the rest is set up
	scratch := m.volumeDir(pod.UID, kindEmptyDir, "scratch")
	cfg := m.volumeDir(pod.UID, kindConfigMap, "cfg")
	cfgFile, err := filepath.EvalSymlinks(filepath.Join(cfg, "app.conf"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"POD_NAME": "web", "EMPTY": ""}

	tests := []struct {
		name    string
		mounts  []v1.VolumeMount
		want    []mount
		wantErr string
		created string // a directory the subPath must have created
	}{{
		name: "emptyDir read-write, configMap forced read-only, hostPath as asked",
		mounts: []v1.VolumeMount{
			{Name: "scratch", MountPath: "/scratch"},
			{Name: "cfg", MountPath: "/etc/app"},
			{Name: "host", MountPath: "/host", ReadOnly: true},
		},
		want: []mount{
			{"/scratch", scratch, false, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
			{"/etc/app", cfg, true, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
			{"/host", hostDir, true, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		},
	}, {
		name: "propagation",
		mounts: []v1.VolumeMount{
			{Name: "host", MountPath: "/a", MountPropagation: ptr(v1.MountPropagationHostToContainer)},
			{Name: "host", MountPath: "/b", MountPropagation: ptr(v1.MountPropagationBidirectional)},
			{Name: "host", MountPath: "/c", MountPropagation: ptr(v1.MountPropagationNone)},
		},
		want: []mount{
			{"/a", hostDir, false, false, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			{"/b", hostDir, false, false, runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			{"/c", hostDir, false, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		},
	}, {
		name:    "subPath is created in the volume",
		mounts:  []v1.VolumeMount{{Name: "scratch", MountPath: "/data", SubPath: "a/b"}},
		want:    []mount{{"/data", filepath.Join(scratch, "a", "b"), false, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE}},
		created: filepath.Join(scratch, "a", "b"),
	}, {
		name:   "subPath of a configMap key resolves to its file",
		mounts: []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "app.conf"}},
		want:   []mount{{"/etc/app.conf", cfgFile, true, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE}},
	}, {
		name:    "subPathExpr expanded with the env",
		mounts:  []v1.VolumeMount{{Name: "scratch", MountPath: "/logs", SubPathExpr: "logs/$(POD_NAME)"}},
		want:    []mount{{"/logs", filepath.Join(scratch, "logs", "web"), false, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE}},
		created: filepath.Join(scratch, "logs", "web"),
	}, {
		name:    "subPathExpr with missing and empty variables",
		mounts:  []v1.VolumeMount{{Name: "scratch", MountPath: "/logs", SubPathExpr: "$(NOPE)/$(EMPTY)/$(POD_NAME)"}},
		wantErr: "missing value for EMPTY, NOPE",
	}, {
		name:    "absolute subPath",
		mounts:  []v1.VolumeMount{{Name: "scratch", MountPath: "/x", SubPath: "/etc"}},
		wantErr: "error SubPath `/etc` must not be an absolute path",
	}, {
		name:    "subPath with backsteps",
		mounts:  []v1.VolumeMount{{Name: "scratch", MountPath: "/x", SubPath: "a/../../etc"}},
		wantErr: "unable to provision SubPath `a/../../etc`: must not contain '..'",
	}, {
		name:    "subPath escaping through a symlink",
		mounts:  []v1.VolumeMount{{Name: "host", MountPath: "/x", SubPath: "escape/inner"}},
		wantErr: `failed to prepare subPath for volumeMount "host" of container "app"`,
	}, {
		name:    "unknown volume",
		mounts:  []v1.VolumeMount{{Name: "ghost", MountPath: "/x"}},
		wantErr: `cannot find volume "ghost" to mount into container "app"`,
	}, {
		name:    "unsupported volume",
		mounts:  []v1.VolumeMount{{Name: "nfs", MountPath: "/x"}},
		wantErr: `volume "nfs" of container "app": volume type nfs is not supported by skiff`,
	}, {
		name:    "invalid propagation",
		mounts:  []v1.VolumeMount{{Name: "host", MountPath: "/x", MountPropagation: ptr(v1.MountPropagationMode("Sideways"))}},
		wantErr: `invalid MountPropagation mode: "Sideways"`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &v1.Container{Name: "app", VolumeMounts: tc.mounts}
			got, err := m.Mounts(pod, c, env)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, plainMounts(got)); err == nil && diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if tc.created != "" {
				if info, err := os.Stat(tc.created); err != nil || !info.IsDir() {
					t.Errorf("subPath dir %s not created: %v", tc.created, err)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(outside, "inner")); err == nil {
		t.Errorf("a subPath created a directory outside its volume")
	}
}
