package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakePodCerts serves fixed credentials, or err, and records its calls.
type fakePodCerts struct {
	key, chain string
	err        error
	calls      []string // volume/index
	forgotten  []types.UID
}

func (f *fakePodCerts) CredentialBundle(_ context.Context, _ *v1.Pod, volume string, index int, _ *v1.PodCertificateProjection) ([]byte, []byte, error) {
	f.calls = append(f.calls, volume+"/"+string(rune('0'+index)))
	if f.err != nil {
		return nil, nil, f.err
	}
	return []byte(f.key), []byte(f.chain), nil
}

func (f *fakePodCerts) ForgetPod(uid types.UID) { f.forgotten = append(f.forgotten, uid) }

func TestPodCertificateProjection(t *testing.T) {
	const key, chain = "-----KEY-----\n", "-----LEAF-----\n-----INTERMEDIATE-----\n"
	bundle := func(p *v1.PodCertificateProjection, mode *int32) v1.Volume {
		return v1.Volume{Name: "tls", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
			Sources: []v1.VolumeProjection{
				{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
				{PodCertificate: p},
			},
			DefaultMode: mode,
		}}}
	}
	for _, tc := range []struct {
		name    string
		proj    *v1.PodCertificateProjection
		mode    *int32
		fsGroup *int64
		want    map[string]file
	}{
		{name: "credential bundle", proj: &v1.PodCertificateProjection{SignerName: "example.com/s", KeyType: "ED25519", CredentialBundlePath: "creds.pem"},
			want: map[string]file{"name": {"web", 0o644}, "creds.pem": {key + chain, 0o644}}},
		{name: "key and chain apart, defaultMode", proj: &v1.PodCertificateProjection{SignerName: "example.com/s", KeyType: "ED25519", KeyPath: "tls.key", CertificateChainPath: "tls.crt"},
			mode: ptr[int32](0o400),
			want: map[string]file{"name": {"web", 0o400}, "tls.key": {key, 0o400}, "tls.crt": {chain, 0o400}}},
		{name: "all three", proj: &v1.PodCertificateProjection{SignerName: "example.com/s", KeyType: "ED25519", CredentialBundlePath: "b", KeyPath: "k", CertificateChainPath: "c"},
			want: map[string]file{"name": {"web", 0o644}, "b": {key + chain, 0o644}, "k": {key, 0o644}, "c": {chain, 0o644}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, newFakeSources())
			pc := &fakePodCerts{key: key, chain: chain}
			m.SetPodCertificates(pc)
			pod := testPod(bundle(tc.proj, tc.mode))
			if err := m.SetUp(context.Background(), pod); err != nil {
				t.Fatalf("SetUp: %v", err)
			}
			if diff := cmp.Diff(tc.want, readVolume(t, m.volumeDir(pod.UID, kindProjected, "tls"))); diff != "" {
				t.Errorf("volume (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"tls/1"}, pc.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if err := m.TearDown(pod.UID); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]types.UID{pod.UID}, pc.forgotten); diff != "" {
				t.Errorf("forgotten (-want +got):\n%s", diff)
			}
		})
	}

	proj := &v1.PodCertificateProjection{SignerName: "example.com/s", KeyType: "ED25519", CredentialBundlePath: "creds.pem"}
	t.Run("a certificate not issued yet writes nothing", func(t *testing.T) {
		m := newTestManager(t, newFakeSources())
		m.SetPodCertificates(&fakePodCerts{err: errors.New("credential bundle is not issued yet")})
		pod := testPod(bundle(proj, nil))
		err := m.SetUp(context.Background(), pod)
		if want := `MountVolume.SetUp failed for volume "tls" : credential bundle is not issued yet`; err == nil || err.Error() != want {
			t.Errorf("SetUp error %v, want %s", err, want)
		}
		if _, err := os.Stat(m.volumeDir(pod.UID, kindProjected, "tls")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("volume directory: %v, want none", err)
		}
	})
	t.Run("a refreshed certificate replaces the files", func(t *testing.T) {
		m := newTestManager(t, newFakeSources())
		pc := &fakePodCerts{key: key, chain: chain}
		m.SetPodCertificates(pc)
		pod := testPod(bundle(proj, nil))
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		pc.key, pc.chain = "-----KEY2-----\n", "-----LEAF2-----\n"
		if err := m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		got := readVolume(t, m.volumeDir(pod.UID, kindProjected, "tls"))
		if want := (file{"-----KEY2-----\n-----LEAF2-----\n", 0o644}); got["creds.pem"] != want {
			t.Errorf("creds.pem = %v, want %v", got["creds.pem"], want)
		}
	})
	t.Run("without a source", func(t *testing.T) {
		m := newTestManager(t, newFakeSources())
		pod := testPod(bundle(proj, nil))
		err := m.SetUp(context.Background(), pod)
		if want := `MountVolume.SetUp failed for volume "tls" : podCertificate projections are not supported by this node`; err == nil || err.Error() != want {
			t.Errorf("SetUp error %v, want %s", err, want)
		}
	})
}
