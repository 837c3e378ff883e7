//go:build conformance

package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-io/skiff/internal/image"
	"github.com/skiff-io/skiff/test/framework"
)

// alwaysPulled are the suite images a conformance test pulls with pull
// policy Always, which needs a registry: the ImageVolume test mounts
// kitten with pullPolicy Always, the projected PodCertificate mTLS test
// runs agnhost so. The others are only imported.
var alwaysPulled = []string{"registry.k8s.io/e2e-test-images/kitten:", "registry.k8s.io/e2e-test-images/agnhost:"}

// mirrorRegistry serves the alwaysPulled images from a registry on the
// network's gateway, which the nodes reach, and makes every node's
// containerd pull registry.k8s.io through it (a hosts.toml in the
// containerd's certs.d, which it reads on every pull). registry.k8s.io
// itself is not reachable from here; what the mirror lacks still fails
// to pull, as the tests that expect failed pulls want. The images are
// pushed from the containerd of the first data dir, which imported them.
func mirrorRegistry(t *testing.T, n *framework.Network, dataDirs ...string) {
	t.Helper()
	if why := framework.CanRunRegistry(); why != "" {
		t.Logf("no registry mirror (tests that pull with policy Always fail): %s", why)
		return
	}
	reg := framework.StartRegistry(t, framework.WithAddress(n.Gateway.String()))
	ctr := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ctr", append([]string{"--address", image.SocketPath(dataDirs[0]), "-n", image.Namespace}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, ref := range strings.Fields(ctr("images", "ls", "-q")) {
		for _, prefix := range alwaysPulled {
			if strings.HasPrefix(ref, prefix) {
				ctr("images", "push", "--plain-http", reg.Host+"/"+strings.TrimPrefix(ref, "registry.k8s.io/"), ref)
			}
		}
	}
	hosts := fmt.Sprintf("server = \"https://registry.k8s.io\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", reg.Host)
	for _, d := range dataDirs {
		dir := filepath.Join(filepath.Dir(image.SocketPath(d)), "certs.d", "registry.k8s.io")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
