package cleanup

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-io/skiff/internal/kubelet/volume"
)

func TestMountsUnder(t *testing.T) {
	const mountinfo = `22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
30 22 0:30 / /var/lib/skiff rw - ext4 /dev/vdb rw
31 30 0:31 / /var/lib/skiff/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw
32 30 0:32 / /var/lib/skiff/agent/pods/uid/volumes/kubernetes.io~secret/tok rw - tmpfs tmpfs rw
33 30 0:33 / /var/lib/skiff/agent/containerd/state/io.containerd.grpc.v1.cri/sandboxes/s1/shm rw - tmpfs shm rw
34 32 0:34 / /var/lib/skiff/agent/pods/uid/volumes/kubernetes.io~secret/tok/nested rw - tmpfs tmpfs rw
35 30 0:35 / /var/lib/skiff/agent/pods/with\040space rw - tmpfs tmpfs rw
36 22 0:36 / /var/lib/skiffother/x rw - tmpfs tmpfs rw
37 22 0:37 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/zzz/rootfs rw - overlay overlay rw
38 30 0:32 / /var/lib/skiff/agent/pods/uid/volumes/kubernetes.io~secret/tok rw - tmpfs tmpfs rw
`
	got, err := mountsUnder(strings.NewReader(mountinfo), "/var/lib/skiff/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/var/lib/skiff/agent/pods/uid/volumes/kubernetes.io~secret/tok/nested",
		"/var/lib/skiff/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
		"/var/lib/skiff/agent/containerd/state/io.containerd.grpc.v1.cri/sandboxes/s1/shm",
		"/var/lib/skiff/agent/pods/uid/volumes/kubernetes.io~secret/tok",
		"/var/lib/skiff/agent/pods/uid/volumes/kubernetes.io~secret/tok",
		"/var/lib/skiff/agent/pods/with space",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mountsUnder (-want +got):\n%s", diff)
	}
	// Deepest first: no mount comes after one that lies below it.
	for i, m := range got {
		for _, later := range got[i+1:] {
			if strings.HasPrefix(later, m+"/") {
				t.Errorf("%s listed after its parent %s", later, m)
			}
		}
	}
	for _, tc := range []struct {
		dir  string
		want bool
	}{{"/var/lib/skiff", true}, {"/var/lib/skiff/agent", false}, {"/", true}} {
		if got, _ := mountedAt(strings.NewReader(mountinfo), tc.dir); got != tc.want {
			t.Errorf("mountedAt(%s) = %v, want %v", tc.dir, got, tc.want)
		}
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/a\011b\134c`:  "/a\tb\\c",
		`/trailing\04`:  `/trailing\04`,
		`/not\999octal`: `/not\999octal`,
	} {
		if got := volume.UnescapeMountInfo(in); got != want {
			t.Errorf("UnescapeMountInfo(%q) = %q, want %q", in, got, want)
		}
	}
}
