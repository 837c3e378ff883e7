package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A ginkgo JSON report in the shape ginkgo v2 writes it.
const sampleReport = `[{
  "SuiteDescription": "Kubernetes e2e suite",
  "StartTime": "2026-12-06T10:00:00Z",
  "EndTime": "2026-12-06T11:30:00Z",
  "SpecReports": [
    {"LeafNodeType": "SynchronizedBeforeSuite", "State": "passed"},
    {"ContainerHierarchyTexts": ["[sig-apps] Job"], "LeafNodeType": "It",
     "LeafNodeText": "should run a job to completion [Conformance]", "State": "passed", "RunTime": 12000000000},
    {"ContainerHierarchyTexts": ["[sig-apps] Job"], "LeafNodeType": "It",
     "LeafNodeText": "should adopt matching orphans [Conformance]", "State": "failed",
     "Failure": {"Message": "\n  timed out waiting for the condition\n  second line"}},
    {"ContainerHierarchyTexts": ["[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin]"], "LeafNodeType": "It",
     "LeafNodeText": "should mutate custom resource [Conformance]", "State": "passed",
     "CapturedGinkgoWriterOutput": "STEP: creating\nI1206 10:01:00 Unexpected error while creating CustomResourceDefinition: the server could not find the requested resource\n"},
    {"ContainerHierarchyTexts": ["[sig-network] Services"], "LeafNodeType": "It",
     "LeafNodeText": "should serve endpoints on same port [Serial] [Conformance]", "State": "skipped"},
    {"ContainerHierarchyTexts": ["[sig-network] Services"], "LeafNodeType": "It",
     "LeafNodeText": "should be able to reach a NodePort [Conformance]", "State": "skipped",
     "Failure": {"Message": "Requires at least 2 nodes (not 1)"}},
    {"ContainerHierarchyTexts": ["[sig-node] Pods"], "LeafNodeType": "It",
     "LeafNodeText": "should be updated [Conformance]", "State": "panicked",
     "Failure": {"Message": "runtime error: invalid memory address"}},
    {"ContainerHierarchyTexts": ["[sig-node] Pods"], "LeafNodeType": "It",
     "LeafNodeText": "should not be in the selection", "State": "skipped"}
  ]
}]`

func TestSummarize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, []byte(sampleReport), 0o600); err != nil {
		t.Fatal(err)
	}
	reports, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(reports, regexp.MustCompile(`\[Conformance\]`), regexp.MustCompile(`\[Serial\]|\[Disruptive\]`))

	type row struct {
		Name    string
		Outcome Outcome
		Cause   string
	}
	var got []row
	for _, r := range s.Results {
		got = append(got, row{r.Name, r.Outcome, r.Cause})
	}
	want := []row{
		{"[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate custom resource [Conformance]", ReturnedEarly,
			"returned early: Unexpected error while creating CustomResourceDefinition: the server could not find the requested resource"},
		{"[sig-apps] Job should adopt matching orphans [Conformance]", Failed, "timed out waiting for the condition"},
		{"[sig-apps] Job should run a job to completion [Conformance]", Passed, ""},
		{"[sig-network] Services should be able to reach a NodePort [Conformance]", NotRun, "Requires at least 2 nodes (not 1)"},
		{"[sig-node] Pods should be updated [Conformance]", Failed, "panicked: runtime error: invalid memory address"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if want := (Counts{Tests: 5, Passed: 1, Failed: 3, NotRun: 1}); s.All != want {
		t.Errorf("all: %+v, want %+v", s.All, want)
	}
	if want := (Counts{Tests: 2, Passed: 1, Failed: 1}); *s.BySIG["sig-apps"] != want {
		t.Errorf("sig-apps: %+v, want %+v", *s.BySIG["sig-apps"], want)
	}
	if s.End.Sub(s.Start) != 90*time.Minute {
		t.Errorf("run from %v to %v, want 90 minutes", s.Start, s.End)
	}

	md := s.Markdown(Meta{Version: "v1.37.2", Skiff: "abc1234", Machine: "2 cores", Command: "make conformance",
		Focus: `\[Conformance\]`, Skip: `\[Serial\]`, Procs: 8, Nodes: 2, Images: []string{"agnhost: built"}, Duration: 90 * time.Minute})
	for _, line := range []string{
		"**1 of 5 passed (20.0 %)**; 3 failed, 1 not run. 1 of the failures were reported passed by the suite but returned early without testing; they count as failed.",
		"| sig-apps | 2 | 1 | 1 | 0 |",
		"| **all** | 5 | 1 | 3 | 1 |",
		"## Failures (3)",
		"- [sig-apps] Job should adopt matching orphans [Conformance]\n  - timed out waiting for the condition\n",
		"## Not run (1)",
		"- agnhost: built",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
}

// kubectl is built with the version of the module it comes from, in
// both places a client's version is read.
func TestVersionFlags(t *testing.T) {
	got := versionFlags("v1.37.2")
	for _, want := range []string{
		"-X k8s.io/client-go/pkg/version.gitVersion=v1.37.2", "-X k8s.io/client-go/pkg/version.gitMajor=1",
		"-X k8s.io/client-go/pkg/version.gitMinor=37", "-X k8s.io/component-base/version.gitVersion=v1.37.2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("versionFlags = %q, missing %q", got, want)
		}
	}
}
