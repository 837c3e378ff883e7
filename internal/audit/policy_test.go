package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePolicy(t *testing.T) {
	yes := true
	const yamlPolicy = `
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
omitManagedFields: true
rules:
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources:
  - group: ""
    resources: ["endpoints", "services", "pods/log"]
- level: Metadata
  nonResourceURLs: ["/healthz*", "/version"]
- level: RequestResponse
  omitManagedFields: true
  namespaces: ["kube-system"]
  resources:
  - group: "apps"
    resources: ["deployments"]
    resourceNames: ["coredns"]
  omitStages: ["ResponseStarted"]
`
	want := &Policy{
		OmitStages:        []Stage{StageRequestReceived},
		OmitManagedFields: true,
		Rules: []PolicyRule{
			{Level: LevelNone, Users: []string{"system:kube-proxy"}, Verbs: []string{"watch"},
				Resources: []GroupResources{{Resources: []string{"endpoints", "services", "pods/log"}}}},
			{Level: LevelMetadata, NonResourceURLs: []string{"/healthz*", "/version"}},
			{Level: LevelRequestResponse, OmitManagedFields: &yes, Namespaces: []string{"kube-system"},
				Resources:  []GroupResources{{Group: "apps", Resources: []string{"deployments"}, ResourceNames: []string{"coredns"}}},
				OmitStages: []Stage{StageResponseStarted}},
		},
	}
	want.APIVersion, want.Kind = "audit.k8s.io/v1", "Policy"
	got, warnings, err := ParsePolicy([]byte(yamlPolicy))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ParsePolicy: %v, warnings %v", err, warnings)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// The same in JSON, from a file.
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(`{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, err := LoadPolicy(path)
	if err != nil || len(p.Rules) != 1 || p.Rules[0].Level != LevelMetadata {
		t.Fatalf("LoadPolicy(json): %+v %v", p, err)
	}

	// An unknown field is tolerated with a warning, as upstream's lenient
	// decoding.
	_, warnings, err = ParsePolicy([]byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  userz: [a]\n"))
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "userz") {
		t.Errorf("unknown field: %v, warnings %v", err, warnings)
	}
}

func TestParsePolicyInvalid(t *testing.T) {
	const head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"unknown level", head + "rules:\n- level: Everything\n", `rules[0].level: unknown level "Everything"`},
		{"no level", head + "rules:\n- users: [a]\n", `rules[0].level: required`},
		{"unknown omitted stage", head + "omitStages: [Done]\nrules:\n- level: None\n", `omitStages[0]: unknown stage "Done"`},
		{"unknown rule stage", head + "rules:\n- level: None\n  omitStages: [RequestReceived, Later]\n", `rules[0].omitStages[1]: unknown stage "Later"`},
		{"url without slash", head + "rules:\n- level: None\n  nonResourceURLs: [healthz]\n", `must begin with '/'`},
		{"wildcard inside", head + "rules:\n- level: None\n  nonResourceURLs: [/a*/b]\n", `wildcard '*' must be the last character`},
		{"urls and resources", head + "rules:\n- level: None\n  nonResourceURLs: [/a]\n  namespaces: [x]\n", `both resources and non-resource URLs`},
		{"names without resources", head + "rules:\n- level: None\n  resources: [{group: apps, resourceNames: [x]}]\n", `resourceNames needs at least one resource`},
		{"bad group", head + "rules:\n- level: None\n  resources: [{group: apps/v1}]\n", `rules[0].resources[0].group: "apps/v1"`},
		{"no rules", head + "rules: []\n", `no rules`},
		{"wrong version", "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n", `want apiVersion "audit.k8s.io/v1"`},
		{"wrong kind", "apiVersion: audit.k8s.io/v1\nkind: Event\nrules:\n- level: None\n", `kind "Event"`},
		{"no type", "rules:\n- level: None\n", `want apiVersion`},
		{"not yaml", "rules: [", `decoding`},
		{"wrong type", head + "rules:\n- level: None\n  users: alice\n", `decoding`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParsePolicy([]byte(tc.policy))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	// Every fault is reported.
	_, _, err := ParsePolicy([]byte(head + "rules:\n- level: A\n- level: B\n"))
	if err == nil || !strings.Contains(err.Error(), "rules[0]") || !strings.Contains(err.Error(), "rules[1]") {
		t.Errorf("two bad rules: %v", err)
	}
	if _, _, err := LoadPolicy(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}
