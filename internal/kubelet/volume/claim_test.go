package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func claimVol(name, claim string, readOnly bool) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}}}
}

func localPV(name, path string) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			Local: &v1.LocalVolumeSource{Path: path},
		}},
	}
}

func hostPathPV(name, path string, typ v1.HostPathType) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			HostPath: &v1.HostPathVolumeSource{Path: path, Type: &typ},
		}},
	}
}

// mountingPod is testPod with its container mounting every volume at
// /mnt/<name>.
func mountingPod(vols ...v1.Volume) *v1.Pod {
	pod := testPod(vols...)
	for _, v := range vols {
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: v.Name, MountPath: "/mnt/" + v.Name})
	}
	return pod
}

func TestClaimMounts(t *testing.T) {
	src := newFakeSources()
	localDir := t.TempDir()
	hostRoot := t.TempDir()
	made := filepath.Join(hostRoot, "made")
	src.bind("ns", "fast", localPV("pv-local", localDir))
	src.bind("ns", "host", hostPathPV("pv-host", made, v1.HostPathDirectoryOrCreate))
	m := newTestManager(t, src)
	pod := mountingPod(claimVol("data", "fast", false), claimVol("ro", "fast", true), claimVol("host", "host", false))
	if err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatalf("SetUp: %v", err)
	}
	if info, err := os.Stat(made); err != nil || !info.IsDir() {
		t.Fatalf("hostPath PV of type DirectoryOrCreate not created: %v", err)
	}
	if err := os.Mkdir(filepath.Join(localDir, "there"), 0o755); err != nil {
		t.Fatal(err)
	}
	private := runtimeapi.MountPropagation_PROPAGATION_PRIVATE

	tests := []struct {
		name    string
		mounts  []v1.VolumeMount
		want    []mount
		wantErr string
		created string
	}{{
		name: "the PV's path, read-only as the claim or the mount says",
		mounts: []v1.VolumeMount{
			{Name: "data", MountPath: "/data"},
			{Name: "data", MountPath: "/data-ro", ReadOnly: true},
			{Name: "ro", MountPath: "/ro"},
			{Name: "host", MountPath: "/host"},
		},
		want: []mount{
			{"/data", localDir, false, false, private},
			{"/data-ro", localDir, true, false, private},
			{"/ro", localDir, true, false, private},
			{"/host", made, false, false, private},
		},
	}, {
		name:    "subPath is created in a writable claim",
		mounts:  []v1.VolumeMount{{Name: "data", MountPath: "/logs", SubPathExpr: "logs/$(POD_NAME)"}},
		want:    []mount{{"/logs", filepath.Join(localDir, "logs", "web"), false, false, private}},
		created: filepath.Join(localDir, "logs", "web"),
	}, {
		name:   "an existing subPath of a read-only claim",
		mounts: []v1.VolumeMount{{Name: "ro", MountPath: "/there", SubPath: "there"}},
		want:   []mount{{"/there", filepath.Join(localDir, "there"), true, false, private}},
	}, {
		name:    "a read-only claim is not written to for a subPath",
		mounts:  []v1.VolumeMount{{Name: "ro", MountPath: "/x", SubPath: "nowhere"}},
		wantErr: `failed to prepare subPath for volumeMount "ro" of container "app"`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &v1.Container{Name: "app", VolumeMounts: tc.mounts}
			got, err := m.Mounts(pod, c, map[string]string{"POD_NAME": "web"})
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
	if _, err := os.Stat(filepath.Join(localDir, "nowhere")); err == nil {
		t.Error("a subPath was created in a read-only claim")
	}

	t.Run("resolved once per pod, forgotten on TearDown", func(t *testing.T) {
		before := src.claimGets
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatalf("SetUp again: %v", err)
		}
		if src.claimGets != before {
			t.Errorf("SetUp fetched claims again (%d GETs, had %d)", src.claimGets, before)
		}
		if err := m.TearDown(pod.UID); err != nil {
			t.Fatal(err)
		}
		_, err := m.Mounts(pod, &pod.Spec.Containers[0], nil)
		if want := `volume "data" of container "app": persistentVolumeClaim "fast" is not set up`; err == nil || err.Error() != want {
			t.Errorf("Mounts after TearDown: %v, want %s", err, want)
		}
		if _, err := os.Stat(localDir); err != nil {
			t.Errorf("TearDown touched the local PV: %v", err)
		}
	})
}

func TestClaimErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	src := newFakeSources()
	src.setConfigMap("ns", "cfg", map[string]string{"a": "A"}, nil)
	src.setClaim(&v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pending"},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
	})
	src.setClaim(&v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "deleted", DeletionTimestamp: &metav1.Time{Time: time.Now()}},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: "pv-local"},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	})
	src.setClaim(&v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gone-pv", UID: "u1"},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: "pv-nowhere"},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	})
	src.bind("ns", "local", localPV("pv-local", dir))
	src.bind("ns", "csi", &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-csi"},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			CSI: &v1.CSIPersistentVolumeSource{Driver: "ebs.csi.aws.com", VolumeHandle: "vol-1"},
		}},
	})
	src.bind("ns", "nfs", &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-nfs"},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			NFS: &v1.NFSVolumeSource{Server: "nfs", Path: "/export"},
		}},
	})
	block := localPV("pv-block", dir)
	block.Spec.VolumeMode = ptr(v1.PersistentVolumeBlock)
	src.bind("ns", "block", block)
	src.bind("ns", "local-missing", localPV("pv-local-missing", missing))
	src.bind("ns", "local-file", localPV("pv-local-file", file))
	src.bind("ns", "local-backsteps", localPV("pv-local-backsteps", dir+"/../"+filepath.Base(dir)))
	src.bind("ns", "host-missing", hostPathPV("pv-host-missing", missing, v1.HostPathDirectory))
	src.bind("ns", "host-file", hostPathPV("pv-host-file", file, v1.HostPathDirectory))
	src.bind("ns", "stolen", localPV("pv-stolen", dir))
	stolen := src.pvs["pv-stolen"]
	stolen.Spec.ClaimRef.UID = "someone-else"

	unable := func(vols, reason string) string {
		return "Unable to attach or mount volumes: unmounted volumes=[" + vols + "], unattached volumes=[], failed to process volumes=[" + vols + "]: " + reason
	}
	tests := []struct {
		name string
		vols []v1.Volume
		want []string // the joined error's lines
	}{{
		name: "missing claim",
		vols: []v1.Volume{claimVol("data", "nope", false)},
		want: []string{unable("data", `error processing PVC ns/nope: failed to fetch PVC from API server: persistentvolumeclaims "nope" not found`)},
	}, {
		name: "unbound claim",
		vols: []v1.Volume{claimVol("data", "pending", false)},
		want: []string{unable("data", `error processing PVC ns/pending: PVC is not bound`)},
	}, {
		name: "claim being deleted without protection",
		vols: []v1.Volume{claimVol("data", "deleted", false)},
		want: []string{unable("data", `error processing PVC ns/deleted: PVC is being deleted`)},
	}, {
		name: "bound PV missing",
		vols: []v1.Volume{claimVol("data", "gone-pv", false)},
		want: []string{unable("data", `error processing PVC ns/gone-pv: failed to fetch PV pv-nowhere from API server: persistentvolumes "pv-nowhere" not found`)},
	}, {
		name: "PV bound to another claim",
		vols: []v1.Volume{claimVol("data", "stolen", false)},
		want: []string{unable("data", `error processing PVC ns/stolen: found PV object pv-stolen but its pv.Spec.ClaimRef.UID someone-else does not point to claim.UID uid-ns-stolen`)},
	}, {
		name: "csi PV",
		vols: []v1.Volume{claimVol("data", "csi", false)},
		want: []string{unable("data", `failed to get Plugin from volumeSpec for volume "pv-csi" err=no volume plugin matched: volume type csi is not supported by skiff`)},
	}, {
		name: "block PV in volumeMounts",
		vols: []v1.Volume{claimVol("data", "block", false)},
		want: []string{unable("data", `error processing PVC ns/block: volume data has volumeMode Block, but is specified in volumeMounts`)},
	}, {
		name: "local path missing",
		vols: []v1.Volume{claimVol("data", "local-missing", false)},
		want: []string{`MountVolume.NewMounter initialization failed for volume "pv-local-missing" : path "` + missing + `" does not exist`},
	}, {
		name: "local path is a file",
		vols: []v1.Volume{claimVol("data", "local-file", false)},
		want: []string{`MountVolume.NewMounter initialization failed for volume "pv-local-file" : only directory and block device are supported`},
	}, {
		name: "local path with backsteps",
		vols: []v1.Volume{claimVol("data", "local-backsteps", false)},
		want: []string{`MountVolume.SetUp failed for volume "pv-local-backsteps" : invalid path: ` + dir + `/../` + filepath.Base(dir) + ` must not contain '..'`},
	}, {
		name: "hostPath PV of type Directory missing",
		vols: []v1.Volume{claimVol("data", "host-missing", false)},
		want: []string{`MountVolume.SetUp failed for volume "pv-host-missing" : hostPath ` + missing + ` doesn't exist`},
	}, {
		name: "hostPath PV of type Directory on a file",
		vols: []v1.Volume{claimVol("data", "host-file", false)},
		want: []string{`MountVolume.SetUp failed for volume "pv-host-file" : hostPath type check failed: ` + file + ` is not a directory, it's a File`},
	}, {
		name: "every failure reported, claims together",
		vols: []v1.Volume{
			claimVol("b", "pending", false),
			{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}},
			claimVol("ok", "local", false),
			claimVol("a", "nfs", false),
		},
		want: []string{
			"Unable to attach or mount volumes: unmounted volumes=[a b cfg], unattached volumes=[], failed to process volumes=[a b]: " +
				`error processing PVC ns/pending: PVC is not bound; ` +
				`failed to get Plugin from volumeSpec for volume "pv-nfs" err=no volume plugin matched: volume type nfs is not supported by skiff`,
			`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, src)
			pod := mountingPod(tc.vols...)
			err := m.SetUp(context.Background(), pod)
			if err == nil {
				t.Fatal("SetUp succeeded, want an error")
			}
			if diff := cmp.Diff(tc.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a claim that becomes bound is set up on the next sync", func(t *testing.T) {
		src := newFakeSources()
		src.setClaim(&v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "later"},
			Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
		})
		m := newTestManager(t, src)
		pod := mountingPod(claimVol("data", "later", false))
		if err := m.SetUp(context.Background(), pod); err == nil {
			t.Fatal("SetUp of an unbound claim succeeded")
		}
		src.bind("ns", "later", localPV("pv-later", dir))
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatalf("SetUp once bound: %v", err)
		}
	})
}

func TestClaimFSGroup(t *testing.T) {
	// Root may give any group; anyone else only one of their own.
	gid := int64(os.Getgid())
	if os.Geteuid() == 0 {
		gid = 4321
	}
	newVolume := func(t *testing.T) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "sub", "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("sub/f", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	withFSGroup := func(pod *v1.Pod, policy *v1.PodFSGroupChangePolicy) *v1.Pod {
		pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(gid), FSGroupChangePolicy: policy}
		return pod
	}
	type owner struct {
		Mode os.FileMode
		GID  int64
	}
	ownership := func(t *testing.T, dir string) map[string]owner {
		t.Helper()
		out := map[string]owner{}
		for _, rel := range []string{".", "sub", "sub/f"} {
			info, err := os.Stat(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			g, err := gidOf(info)
			if err != nil {
				t.Fatal(err)
			}
			out[rel] = owner{info.Mode() & (os.ModePerm | os.ModeSetgid), g}
		}
		return out
	}
	applied := map[string]owner{
		".":     {0o770 | os.ModeSetgid, gid},
		"sub":   {0o770 | os.ModeSetgid, gid},
		"sub/f": {0o660, gid},
	}

	t.Run("local PV gets the group, group rw and setgid dirs", func(t *testing.T) {
		dir := newVolume(t)
		src := newFakeSources()
		src.bind("ns", "c", localPV("pv", dir))
		m := newTestManager(t, src)
		pod := withFSGroup(mountingPod(claimVol("data", "c", false)), nil)
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(applied, ownership(t, dir)); diff != "" {
			t.Errorf("ownership (-want +got):\n%s", diff)
		}

		// Once per pod, across a kubelet restart too.
		if err := os.Chmod(filepath.Join(dir, "sub", "f"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		restarted := New(m.root, src, nil, m.log)
		if err := restarted.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		if got := ownership(t, dir)["sub/f"].Mode; got != 0o600 {
			t.Errorf("ownership applied again: sub/f mode %v, want 0600", got)
		}
	})

	t.Run("OnRootMismatch leaves a volume whose root matches", func(t *testing.T) {
		dir := newVolume(t)
		if err := os.Lchown(dir, -1, int(gid)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o770|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
		before := ownership(t, dir)
		src := newFakeSources()
		src.bind("ns", "c", localPV("pv", dir))
		m := newTestManager(t, src)
		pod := withFSGroup(mountingPod(claimVol("data", "c", false)), ptr(v1.FSGroupChangeOnRootMismatch))
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, ownership(t, dir)); diff != "" {
			t.Errorf("ownership changed (-before +after):\n%s", diff)
		}
	})

	t.Run("OnRootMismatch walks a volume whose root differs", func(t *testing.T) {
		dir := newVolume(t)
		src := newFakeSources()
		src.bind("ns", "c", localPV("pv", dir))
		m := newTestManager(t, src)
		pod := withFSGroup(mountingPod(claimVol("data", "c", false)), ptr(v1.FSGroupChangeOnRootMismatch))
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(applied, ownership(t, dir)); diff != "" {
			t.Errorf("ownership (-want +got):\n%s", diff)
		}
	})

	for _, tc := range []struct {
		name string
		pv   func(dir string) *v1.PersistentVolume
		ro   bool
	}{
		{"not on a read-only claim", func(dir string) *v1.PersistentVolume { return localPV("pv", dir) }, true},
		{"not on a hostPath PV", func(dir string) *v1.PersistentVolume { return hostPathPV("pv", dir, v1.HostPathDirectory) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newVolume(t)
			before := ownership(t, dir)
			src := newFakeSources()
			src.bind("ns", "c", tc.pv(dir))
			m := newTestManager(t, src)
			pod := withFSGroup(mountingPod(claimVol("data", "c", tc.ro)), nil)
			if err := m.SetUp(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, ownership(t, dir)); diff != "" {
				t.Errorf("ownership changed (-before +after):\n%s", diff)
			}
		})
	}

	t.Run("not while another pod on the node uses the volume", func(t *testing.T) {
		dir := newVolume(t)
		before := ownership(t, dir)
		src := newFakeSources()
		src.bind("ns", "c", localPV("pv", dir))
		m := newTestManager(t, src)
		first := mountingPod(claimVol("data", "c", false))
		if err := m.SetUp(context.Background(), first); err != nil {
			t.Fatal(err)
		}
		second := withFSGroup(mountingPod(claimVol("data", "c", false)), nil)
		second.Name, second.UID = "web-2", "uid-2"
		if err := m.SetUp(context.Background(), second); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, ownership(t, dir)); diff != "" {
			t.Errorf("ownership changed (-before +after):\n%s", diff)
		}
	})
}
