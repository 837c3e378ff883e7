package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type file struct {
	Content string
	Mode    os.FileMode
}

// readVolume reads what a container would see in dir: every visible entry
// (not the writer's `..` ones), symlinks followed, files by relative path.
func readVolume(t *testing.T, dir string) map[string]file {
	t.Helper()
	out := map[string]file{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read volume: %v", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		top := filepath.Join(dir, e.Name())
		real, err := filepath.EvalSymlinks(top)
		if err != nil {
			t.Fatalf("resolve %s: %v", top, err)
		}
		err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := os.Stat(p)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(real, p)
			out[filepath.Join(e.Name(), rel)] = file{Content: string(data), Mode: info.Mode().Perm()}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", real, err)
		}
	}
	return out
}

func TestSetUpContentVolumes(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap("ns", "cfg", map[string]string{"a.conf": "A", "b.conf": "B"}, map[string][]byte{"bin": {0, 1, 2}})
	src.setSecret("ns", "sec", map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret")})

	tests := []struct {
		name string
		vol  v1.Volume
		kind string
		want map[string]file
	}{{
		name: "configMap all keys with default mode",
		vol:  v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		kind: kindConfigMap,
		want: map[string]file{"a.conf": {"A", 0o644}, "b.conf": {"B", 0o644}, "bin": {"\x00\x01\x02", 0o644}},
	}, {
		name: "configMap items, nested path, item mode over defaultMode",
		vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cfg"},
			DefaultMode:          ptr[int32](0o640),
			Items:                []v1.KeyToPath{{Key: "a.conf", Path: "etc/app/a"}, {Key: "b.conf", Path: "b", Mode: ptr[int32](0o600)}},
		}}},
		kind: kindConfigMap,
		want: map[string]file{"etc/app/a": {"A", 0o640}, "b": {"B", 0o600}},
	}, {
		name: "optional configMap that is missing gives an empty volume",
		vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true),
			Items: []v1.KeyToPath{{Key: "k", Path: "k"}},
		}}},
		kind: kindConfigMap,
		want: map[string]file{},
	}, {
		name: "optional configMap skips a missing item key",
		vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Optional: ptr(true),
			Items: []v1.KeyToPath{{Key: "gone", Path: "gone"}, {Key: "a.conf", Path: "a"}},
		}}},
		kind: kindConfigMap,
		want: map[string]file{"a": {"A", 0o644}},
	}, {
		name: "secret all keys with defaultMode",
		vol:  v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr[int32](0o400)}}},
		kind: kindSecret,
		want: map[string]file{"user": {"admin", 0o400}, "pass": {"s3cret", 0o400}},
	}, {
		name: "secret items",
		vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
			SecretName: "sec", Items: []v1.KeyToPath{{Key: "pass", Path: "creds/password", Mode: ptr[int32](0o440)}},
		}}},
		kind: kindSecret,
		want: map[string]file{"creds/password": {"s3cret", 0o440}},
	}, {
		name: "optional secret that is missing gives an empty volume",
		vol:  v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "nope", Optional: ptr(true)}}},
		kind: kindSecret,
		want: map[string]file{},
	}, {
		name: "downwardAPI fields and resources",
		vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}},
			{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
			{Path: "uid", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: ptr[int32](0o600)},
			{Path: "app", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
			{Path: "mem_mi", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
			{Path: "cpu_limit_m", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
			{Path: "cpu_request", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.cpu"}},
		}}}},
		kind: kindDownwardAPI,
		want: map[string]file{
			"name": {"web", 0o644}, "namespace": {"ns", 0o644}, "uid": {"uid-1", 0o644},
			"labels":      {"app=\"web\"\ntier=\"front\"", 0o644},
			"annotations": {`note="say \"hi\""`, 0o600},
			"app":         {"web", 0o644},
			"mem_mi":      {"128", 0o644},
			"cpu_limit_m": {"4000", 0o644}, // node allocatable: no limit set
			"cpu_request": {"1", 0o644},    // 250m rounded up
		},
	}, {
		name: "projected configMap, secret, downwardAPI and token",
		vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
			DefaultMode: ptr[int32](0o444),
			Sources: []v1.VolumeProjection{
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Items: []v1.KeyToPath{{Key: "a.conf", Path: "a"}}}},
				{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Items: []v1.KeyToPath{{Key: "user", Path: "user"}}}},
				{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}},
				{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "vault"}},
			},
		}}},
		kind: kindProjected,
		want: map[string]file{"a": {"A", 0o444}, "user": {"admin", 0o444}, "ns": {"ns", 0o444}, "token": {"token-1", 0o444}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, src)
			pod := testPod(tc.vol)
			if err := m.SetUp(context.Background(), pod); err != nil {
				t.Fatalf("SetUp: %v", err)
			}
			dir := m.volumeDir(pod.UID, tc.kind, tc.vol.Name)
			if diff := cmp.Diff(tc.want, readVolume(t, dir)); diff != "" {
				t.Errorf("volume content (-want +got):\n%s", diff)
			}
			info, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode().Perm(); got != 0o777 {
				t.Errorf("volume dir mode = %o, want 777", got)
			}
		})
	}
}

var tsDirName = regexp.MustCompile(`^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$`)

func TestAtomicUpdate(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap("ns", "cfg", map[string]string{"keep": "v1", "drop": "x"}, nil)
	m := newTestManager(t, src)
	pod := testPod(v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}})
	dir := m.volumeDir(pod.UID, kindConfigMap, "cfg")
	ctx := context.Background()

	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatalf("..data: %v", err)
	}
	if !tsDirName.MatchString(first) {
		t.Errorf("..data -> %q, want a timestamped dir name", first)
	}
	if target, err := os.Readlink(filepath.Join(dir, "keep")); err != nil || target != "..data/keep" {
		t.Errorf("keep -> %q (%v), want ..data/keep", target, err)
	}

	// Same content: nothing is rewritten.
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != first {
		t.Errorf("unchanged content rewritten: ..data %q -> %q", first, again)
	}

	// New content: a new dir, the old one gone, links follow.
	src.setConfigMap("ns", "cfg", map[string]string{"keep": "v2", "new": "n"}, nil)
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	second, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	if second == first || !tsDirName.MatchString(second) {
		t.Errorf("..data after update = %q (before %q)", second, first)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old content dir %s still there: %v", first, err)
	}
	want := map[string]file{"keep": {"v2", 0o644}, "new": {"n", 0o644}}
	if diff := cmp.Diff(want, readVolume(t, dir)); diff != "" {
		t.Errorf("content after update (-want +got):\n%s", diff)
	}
	if _, err := os.Lstat(filepath.Join(dir, "drop")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("link of removed key still there: %v", err)
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{second, "..data", "keep", "new"}, names); diff != "" {
		t.Errorf("volume dir entries (-want +got):\n%s", diff)
	}
}

func TestSetUpErrors(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap("ns", "cfg", map[string]string{"a": "A"}, nil)
	src.setSecret("ns", "sec", map[string][]byte{"a": []byte("A")})
	cmVol := func(name, cm string, items ...v1.KeyToPath) v1.Volume {
		return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: cm}, Items: items}}}
	}
	tests := []struct {
		name string
		vols []v1.Volume
		want []string // the joined error's lines
	}{{
		name: "missing configMap",
		vols: []v1.Volume{cmVol("cfg", "x")},
		want: []string{`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`},
	}, {
		name: "missing secret",
		vols: []v1.Volume{{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "x"}}}},
		want: []string{`MountVolume.SetUp failed for volume "s" : secret "x" not found`},
	}, {
		name: "missing configMap key",
		vols: []v1.Volume{cmVol("cfg", "cfg", v1.KeyToPath{Key: "nope", Path: "p"})},
		want: []string{`MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: nope`},
	}, {
		name: "missing secret key",
		vols: []v1.Volume{{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", Items: []v1.KeyToPath{{Key: "nope", Path: "p"}}}}}},
		want: []string{`MountVolume.SetUp failed for volume "s" : references non-existent secret key: nope`},
	}, {
		name: "missing clusterTrustBundle",
		vols: []v1.Volume{{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Name: ptr("b"), Path: "ca.crt"}},
		}}}}},
		want: []string{`MountVolume.SetUp failed for volume "p" : while getting ClusterTrustBundle: clustertrustbundle.certificates.k8s.io "b" not found`},
	}, {
		name: "no clusterTrustBundle of the signer matches",
		vols: []v1.Volume{{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{SignerName: ptr("example.com/s"), LabelSelector: &metav1.LabelSelector{}, Path: "ca.crt"}},
		}}}}},
		want: []string{`MountVolume.SetUp failed for volume "p" : combination of signerName and labelSelector matched zero ClusterTrustBundles`},
	}, {
		name: "unsupported volume type",
		vols: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "nfs", Path: "/export"}}}},
		want: []string{`MountVolume.SetUp failed for volume "data" : volume type nfs is not supported by skiff`},
	}, {
		name: "every failure reported",
		vols: []v1.Volume{cmVol("one", "x"), {Name: "ok", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}, cmVol("two", "y")},
		want: []string{
			`MountVolume.SetUp failed for volume "one" : configmap "x" not found`,
			`MountVolume.SetUp failed for volume "two" : configmap "y" not found`,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, src)
			pod := testPod(tc.vols...)
			err := m.SetUp(context.Background(), pod)
			if err == nil {
				t.Fatal("SetUp succeeded, want an error")
			}
			if diff := cmp.Diff(tc.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("volumes that can be set up are", func(t *testing.T) {
		m := newTestManager(t, src)
		pod := testPod(cmVol("bad", "x"), v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}, cmVol("good", "cfg"))
		if err := m.SetUp(context.Background(), pod); err == nil {
			t.Fatal("want an error")
		}
		if _, err := os.Stat(m.volumeDir(pod.UID, kindEmptyDir, "scratch")); err != nil {
			t.Errorf("emptyDir after a failing volume: %v", err)
		}
		if diff := cmp.Diff(map[string]file{"a": {"A", 0o644}}, readVolume(t, m.volumeDir(pod.UID, kindConfigMap, "good"))); diff != "" {
			t.Errorf("good configMap (-want +got):\n%s", diff)
		}
	})
}

func TestTokenRefresh(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	src := newFakeSources()
	src.clock = clock
	m := newTestManager(t, src)
	m.now = clock
	pod := testPod(v1.Volume{Name: "tok", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
		{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "api", ExpirationSeconds: ptr[int64](1000)}},
		{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "default-ttl"}},
	}}}})
	dir := m.volumeDir(pod.UID, kindProjected, "tok")
	ctx := context.Background()
	read := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "token"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := src.tokenRequests(); got != 2 {
		t.Fatalf("token requests = %d, want 2", got)
	}
	wantReq := authenticationv1.TokenRequestSpec{
		Audiences:         []string{"api"},
		ExpirationSeconds: ptr[int64](1000),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "web", UID: "uid-1"},
	}
	if diff := cmp.Diff(wantReq, src.requests[0].Spec); diff != "" {
		t.Errorf("token request (-want +got):\n%s", diff)
	}
	if got := *src.requests[1].Spec.ExpirationSeconds; got != 3600 {
		t.Errorf("default expirationSeconds = %d, want 3600", got)
	}
	if diff := cmp.Diff([]string{"ns/runner", "ns/runner"}, src.accounts); diff != "" {
		t.Errorf("service accounts (-want +got):\n%s", diff)
	}
	first := read()

	now = now.Add(700 * time.Second) // 70% of 1000s: still fresh
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := src.tokenRequests(); got != 2 {
		t.Errorf("token re-requested at 70%% of its life: %d requests", got)
	}
	if got := read(); got != first {
		t.Errorf("token changed to %q without a refresh", got)
	}

	now = now.Add(100 * time.Second) // 80%: refresh the short one only
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := src.tokenRequests(); got != 3 {
		t.Errorf("token requests after 80%% = %d, want 3", got)
	}
	if got := read(); got != "token-3" {
		t.Errorf("token after refresh = %q, want token-3", got)
	}

	// A failed refresh keeps a token that has not expired.
	now = now.Add(850 * time.Second)
	src.tokenErr = errors.New("apiserver down")
	if err := m.SetUp(ctx, pod); err != nil {
		t.Errorf("SetUp with a failing but unexpired token: %v", err)
	}
	now = now.Add(200 * time.Second) // expired now
	if err := m.SetUp(ctx, pod); err == nil || !strings.Contains(err.Error(), "failed to fetch token: apiserver down") {
		t.Errorf("SetUp with an expired token and failing refresh = %v", err)
	}
	src.tokenErr = nil

	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(m.tokens) != 0 {
		t.Errorf("TearDown left %d cached tokens", len(m.tokens))
	}
}

func TestPodUIDsOnDiskAndTearDown(t *testing.T) {
	m := newTestManager(t, newFakeSources())
	if uids, err := m.PodUIDsOnDisk(); err != nil || len(uids) != 0 {
		t.Fatalf("empty root: %v, %v", uids, err)
	}
	for _, uid := range []string{"a", "b"} {
		pod := testPod(v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
		pod.UID = typesUID(uid)
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
	}
	uids, err := m.PodUIDsOnDisk()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, uidStrings(uids)); diff != "" {
		t.Errorf("pods on disk (-want +got):\n%s", diff)
	}
	if err := m.TearDown("a"); err != nil {
		t.Fatal(err)
	}
	if err := m.TearDown("a"); err != nil {
		t.Errorf("second TearDown: %v", err)
	}
	uids, _ = m.PodUIDsOnDisk()
	if diff := cmp.Diff([]string{"b"}, uidStrings(uids)); diff != "" {
		t.Errorf("pods on disk after TearDown (-want +got):\n%s", diff)
	}
}

func TestMemoryVolumeSize(t *testing.T) {
	m := newTestManager(t, newFakeSources()) // node: 8Gi
	gi := int64(1 << 30)
	mi := int64(1 << 20)
	withLimits := func(limits ...string) *v1.Pod {
		p := &v1.Pod{}
		for _, l := range limits {
			c := v1.Container{}
			if l != "" {
				c.Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse(l)}
			}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		return p
	}
	tests := []struct {
		name      string
		pod       *v1.Pod
		sizeLimit string
		want      int64
	}{
		{"node allocatable", withLimits(""), "", 8 * gi},
		{"pod limit when every container has one", withLimits("1Gi", "512Mi"), "", gi + 512*mi},
		{"no pod limit when one container lacks it", withLimits("1Gi", ""), "", 8 * gi},
		{"sizeLimit below pod limit", withLimits("1Gi"), "64Mi", 64 * mi},
		{"sizeLimit above pod limit ignored", withLimits("1Gi"), "2Gi", gi},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sl *resource.Quantity
			if tc.sizeLimit != "" {
				sl = ptr(resource.MustParse(tc.sizeLimit))
			}
			if got := m.memoryVolumeSize(tc.pod, sl); got != tc.want {
				t.Errorf("size = %d, want %d", got, tc.want)
			}
		})
	}
}

func typesUID(s string) types.UID { return types.UID(s) }

func uidStrings(uids []types.UID) []string {
	out := make([]string, len(uids))
	for i, u := range uids {
		out[i] = string(u)
	}
	return out
}
