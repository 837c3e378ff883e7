//go:build conformance

package conformance

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/image"
	"github.com/skiff-io/skiff/test/framework"
)

// Settings, from the environment (make conformance passes them on).
var (
	focus = envOr("CONFORMANCE_FOCUS", `\[Conformance\]`)
	skip  = envOr("CONFORMANCE_SKIP", `\[Serial\]|\[Disruptive\]`)
	procs = envOr("CONFORMANCE_PROCS", "8")
	// The suite's time limit (ginkgo --timeout): tests not reached by
	// then are reported as not run.
	timeout = envOr("CONFORMANCE_TIMEOUT", "8h")
	report  = envOr("CONFORMANCE_REPORT", "") // default: docs/conformance.md
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// TestConformance builds upstream's suite (or takes it from the cache),
// starts a two-node skiff cluster in network namespaces, runs the suite
// against it and writes docs/conformance.md.
func TestConformance(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	if why := framework.CanRunNetworkNamespaces(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	focusRE, err := regexp.Compile(focus)
	if err != nil {
		t.Fatalf("CONFORMANCE_FOCUS: %v", err)
	}
	skipRE, err := regexp.Compile(skip)
	if err != nil {
		t.Fatalf("CONFORMANCE_SKIP: %v", err)
	}
	nprocs, err := strconv.Atoi(procs)
	if err != nil || nprocs < 1 {
		t.Fatalf("CONFORMANCE_PROCS %q: want a positive number", procs)
	}
	root := moduleRoot(t)
	if report == "" {
		report = filepath.Join(root, "docs", "conformance.md")
	}
	suiteDir := filepath.Join(root, "test", "conformance", "suite")
	version := requiredVersion(t, filepath.Join(suiteDir, "go.mod"), "k8s.io/kubernetes")
	bins := buildSuite(t, suiteDir, version)

	skiffBin := filepath.Join(t.TempDir(), "skiff")
	goCmd(t, root, nil, "build", "-o", skiffBin, "./cmd/skiff")

	images := t.TempDir()
	framework.BuildImages(t, images)
	how := writeSuiteImages(t, bins, suiteDir, filepath.Join(images, "conformance.tar"))

	network := framework.NewNetwork(t, "skcf0", "10.199.80.0/24")
	nodes := []*framework.NetNode{network.AddNode(t, "skcf-server"), network.AddNode(t, "skcf-a1")}
	c := framework.StartNodeIn(t, skiffBin, images, nodes[0])
	join := framework.JoinString(t, skiffBin, c)
	dataDirs := []string{c.DataDir}
	for _, nn := range nodes[1:] {
		dataDirs = append(dataDirs, framework.StartAgentIn(t, skiffBin, c, nn, join, images).DataDir)
	}
	mirrorRegistry(t, network, dataDirs...)

	out := filepath.Join(bins.dir, "runs", time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(out, "ginkgo.log")
	t.Logf("running the suite with %d processes; progress in %s", nprocs, logPath)
	start := time.Now()
	ginkgo := exec.Command(bins.ginkgo, "--procs="+procs, "--timeout="+timeout, "--no-color",
		"--focus="+focus, "--skip="+skip, "--output-dir="+out, "--json-report=report.json",
		bins.e2e, "--",
		"--kubeconfig="+c.Kubeconfig, "--provider=skeleton", "--kubectl-path="+bins.kubectl,
		"--report-dir="+out, "--dump-logs-on-failure=false")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ginkgo.Stdout, ginkgo.Stderr = logf, logf
	runErr := ginkgo.Run() // non-zero whenever a test fails: the report says which
	took := time.Since(start)
	reports, err := ReadReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatalf("the suite wrote no report (ginkgo: %v); see %s:\n%s", runErr, logPath, tailFile(logPath, 40))
	}
	s := Summarize(reports, focusRE, skipRE)
	md := s.Markdown(Meta{
		Version: version, Skiff: skiffCommit(root), Machine: machine(),
		Command: "make conformance", Focus: focus, Skip: skip, Procs: nprocs, Nodes: len(nodes), Timeout: timeout,
		Images: how, Duration: took,
	})
	if err := os.WriteFile(report, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d passed, %d failed, %d not run, in %s; wrote %s (run files in %s)",
		s.All.Passed, s.All.Tests, s.All.Failed, s.All.NotRun, took.Round(time.Second), report, out)
	if s.All.Tests == 0 {
		t.Errorf("the selection ran no test: focus %q, skip %q", focus, skip)
	}
}

// suiteBinaries are the built upstream binaries.
type suiteBinaries struct {
	dir                                       string // the cache directory
	e2e, ginkgo, kubectl, agnhost, nonewprivs string
	sampleAPIServer, etcd                     string
}

// buildSuite builds e2e.test, ginkgo, kubectl, agnhost, nnp,
// sample-apiserver and etcd from the
// suite module, into a cache directory keyed by the module's go.sum, and
// reuses what is already there.
func buildSuite(t *testing.T, suiteDir, version string) suiteBinaries {
	t.Helper()
	sum, err := os.ReadFile(filepath.Join(suiteDir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(sum)
	base := os.Getenv("CONFORMANCE_CACHE")
	if base == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no cache directory: %v (set CONFORMANCE_CACHE)", err)
		}
		base = filepath.Join(userCache, "skiff", "conformance")
	}
	dir := filepath.Join(base, version+"-"+hex.EncodeToString(h[:])[:12])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := suiteBinaries{dir: dir}
	static := []string{"CGO_ENABLED=0"}
	for _, x := range []struct {
		path *string
		name string
		args []string
		env  []string
	}{
		{&b.ginkgo, "ginkgo", []string{"build", "github.com/onsi/ginkgo/v2/ginkgo"}, nil},
		{&b.kubectl, "kubectl", []string{"build", "-ldflags=" + versionFlags(version), "k8s.io/kubernetes/cmd/kubectl"}, nil},
		{&b.agnhost, "agnhost", []string{"build", "-trimpath", "-ldflags=-s -w", "k8s.io/kubernetes/test/images/agnhost"}, static},
		{&b.nonewprivs, "nnp", []string{"build", "-trimpath", "k8s.io/kubernetes/test/images/nonewprivs"}, static},
		{&b.sampleAPIServer, "sample-apiserver", []string{"build", "-trimpath", "-ldflags=-s -w", "k8s.io/sample-apiserver"}, static},
		{&b.etcd, "etcd", []string{"build", "-trimpath", "-ldflags=-s -w", "go.etcd.io/etcd/server/v3"}, static},
		{&b.e2e, "e2e.test", []string{"test", "-c", "-vet=off", "-ldflags=" + versionFlags(version), "k8s.io/kubernetes/test/e2e"}, nil},
	} {
		*x.path = filepath.Join(dir, x.name)
		// The recipe is kept beside the binary: a changed recipe rebuilds it.
		recipe := strings.Join(append(x.args, x.env...), " ") + "\n"
		stamp := *x.path + ".recipe"
		if have, err := os.ReadFile(stamp); err == nil && string(have) == recipe {
			if _, err := os.Stat(*x.path); err == nil {
				continue
			}
		}
		t.Logf("building %s from k8s.io/kubernetes %s (cached in %s)", x.name, version, dir)
		tmp := *x.path + ".tmp"
		goCmd(t, suiteDir, x.env, append([]string{x.args[0], "-o", tmp}, x.args[1:]...)...)
		if err := os.Rename(tmp, *x.path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stamp, []byte(recipe), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// writeSuiteImages writes the images `e2e.test --list-images` names, as
// far as they can be made here, into one OCI layout tarball, and returns
// how each was made.
func writeSuiteImages(t *testing.T, b suiteBinaries, suiteDir, file string) []string {
	t.Helper()
	out, err := exec.Command(b.e2e, "--list-images").Output()
	if err != nil {
		t.Fatalf("e2e.test --list-images: %v", err)
	}
	var refs []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			refs = append(refs, l)
		}
	}
	kdir := strings.TrimSpace(string(goOutput(t, suiteDir, "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes")))
	imgs, how, err := suiteImages(refs, imageSources{
		Agnhost: b.agnhost, Nonewprivs: b.nonewprivs, Busybox: buildBusybox(t, b.dir), BusyboxMade: busyboxMade, Kubernetes: kdir, HostTools: agnhostTools,
		SampleAPIServer: b.sampleAPIServer, Etcd: b.etcd,
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	if err := image.WriteLayout(w, imgs...); err != nil {
		t.Fatalf("writing %s: %v", file, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return how
}

func goCmd(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

func goOutput(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(gomod)))
}

// requiredVersion is the version go.mod requires of module.
func requiredVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s requires no %s", gomod, module)
	}
	return string(m[1])
}

func skiffCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "(unknown commit)"
	}
	commit := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		commit += " with local changes"
	}
	return commit
}

func machine() string {
	desc := fmt.Sprintf("%d cores", runtime.NumCPU())
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		if m := regexp.MustCompile(`(?m)^PRETTY_NAME="?([^"\n]+)`).FindSubmatch(data); m != nil {
			desc = string(m[1]) + ", " + desc
		}
	}
	return desc
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
