package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// thirdPartyCRDs are real definitions in use, each taken from its
// project's own Go module (downloaded through the module proxy at test
// time) with an example of its objects from the same module: the CRDs of
// the Gateway API (standard channel, full of CEL rules and list-maps),
// cert-manager, and the Prometheus operator (monitoring.coreos.com, among
// the largest schemas in use).
var thirdPartyCRDs = []struct {
	module, version string
	crds            string   // the directory of CRD manifests
	examples        []string // files or directories of example objects
	want            int      // how many CRDs
}{
	{"sigs.k8s.io/gateway-api", "v1.6.3", "config/crd/standard",
		[]string{"examples/standard/simple-gateway", "examples/standard/http-routing"}, 10},
	{"github.com/cert-manager/cert-manager", "v1.19.1", "deploy/crds",
		[]string{"test/fixtures/cert-manager-resources.yaml"}, 6},
	{"github.com/prometheus-operator/prometheus-operator", "v0.75.0", "example/prometheus-operator-crd",
		[]string{"example/user-guides/getting-started/prometheus-service-monitor.yaml", "example/user-guides/getting-started/example-app-service-monitor.yaml"}, 10},
}

// TestCustomResourceDefinitions installs the third-party CRDs with the
// stock kubectl, as their READMEs say (server-side apply), and drives
// their example objects through apply, list, explain and a server-side
// apply round trip.
func TestCustomResourceDefinitions(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)
	k := kubectl{t: t, c: c}
	total := 0
	var examples []string
	for _, src := range thirdPartyCRDs {
		dir := moduleDir(t, src.module, src.version)
		// Only the definitions: gateway-api ships a
		// ValidatingAdmissionPolicy beside them.
		crds := t.TempDir()
		entries, err := os.ReadDir(filepath.Join(dir, src.crds))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, src.crds, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), "\nkind: CustomResourceDefinition\n") {
				writeFile(t, filepath.Join(crds, e.Name()), string(data))
				n++
			}
		}
		if n != src.want {
			t.Fatalf("%s@%s: %d definitions in %s, want %d", src.module, src.version, n, src.crds, src.want)
		}
		total += n
		out := k.ok("apply", "--server-side", "-f", crds)
		if got := strings.Count(out, "serverside-applied"); got != n {
			t.Fatalf("%s: %d of %d definitions applied:\n%s", src.module, got, n, out)
		}
		for _, e := range src.examples {
			examples = append(examples, filepath.Join(dir, e))
		}
	}
	out := k.ok("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
	if got := strings.Count(out, "condition met"); got != total {
		t.Fatalf("%d of %d definitions established:\n%s", got, total, out)
	}

	// The examples, server-side applied twice: the second apply changes
	// nothing, so nothing is written. Not HTTPRoutes: their rules are an
	// atomic list that the examples send without the schema's defaults,
	// so every apply replaces it and upstream's field manager (ours too)
	// records a new apply time.
	for _, e := range examples {
		k.ok("apply", "--server-side", "-f", e)
	}
	const noop = "gateways.gateway.networking.k8s.io,certificates.cert-manager.io,issuers.cert-manager.io,prometheuses.monitoring.coreos.com,servicemonitors.monitoring.coreos.com"
	before := resourceVersions(t, k, noop)
	if len(before) != 7 {
		t.Fatalf("example objects: %v, want 7", before)
	}
	if got := len(resourceVersions(t, k, "httproutes")); got != 4 {
		t.Fatalf("%d httproutes, want 4", got)
	}
	for _, e := range examples {
		k.ok("apply", "--server-side", "-f", e)
	}
	after := resourceVersions(t, k, noop)
	for name, rv := range before {
		if after[name] != rv {
			t.Errorf("%s: resourceVersion %s -> %s on a second identical apply", name, rv, after[name])
		}
	}

	// Defaults from the schemas, and printer columns.
	if got := k.ok("get", "httproute", "foo-route", "-o", "jsonpath={.spec.rules[0].backendRefs[0].weight} {.spec.parentRefs[0].kind}"); got != "1 Gateway" {
		t.Errorf("defaulted httproute fields = %q, want \"1 Gateway\"", got)
	}
	out = k.ok("get", "httproutes")
	mustContain(t, "get httproutes", out, "HOSTNAMES", `["foo.example.com"]`)

	// A list-map merges by its keys: another manager adds a listener to
	// the Gateway without touching the example's.
	k.okIn(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: example-gateway
spec:
  gatewayClassName: example-gateway-class
  listeners:
  - name: extra
    protocol: HTTP
    port: 8080
`, "apply", "--server-side", "--field-manager=second", "-f", "-")
	if got := k.ok("get", "gateway", "example-gateway", "-o", "jsonpath={.spec.listeners[*].name}"); got != "http extra" {
		t.Errorf("listeners after a second manager's apply = %q, want \"http extra\"", got)
	}

	// Round trip: each object as read, applied back by another manager,
	// keeps its spec and generation; the manager shares its fields.
	for _, name := range []string{"certificate/test1", "prometheus/prometheus", "httproute/foo-route", "gateway/prod-web"} {
		var obj map[string]any
		if err := json.Unmarshal([]byte(k.ok("get", name, "-o", "json")), &obj); err != nil {
			t.Fatal(err)
		}
		meta := obj["metadata"].(map[string]any)
		gen := meta["generation"]
		for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} {
			delete(meta, f)
		}
		spec, _ := json.Marshal(obj["spec"])
		raw, _ := json.Marshal(obj)
		k.okIn(string(raw), "apply", "--server-side", "--field-manager=roundtrip", "-f", "-")
		if got := k.ok("get", name, "-o", "jsonpath={.spec}"); !jsonEqual(got, string(spec)) {
			t.Errorf("%s: spec after applying it back:\n%s\nwas:\n%s", name, got, spec)
		}
		if got := k.ok("get", name, "-o", "jsonpath={.metadata.generation}"); got != fmt.Sprint(gen) {
			t.Errorf("%s: generation %v -> %s after applying it back", name, gen, got)
		}
		if got := k.ok("get", name, "-o", "jsonpath={.metadata.managedFields[*].manager}", "--show-managed-fields"); !strings.Contains(got, "roundtrip") {
			t.Errorf("%s: managers %q lack roundtrip", name, got)
		}
	}

	out = k.ok("explain", "httproute.spec.rules.matches.path")
	mustContain(t, "explain httproute", out, "GROUP:      gateway.networking.k8s.io", "KIND:       HTTPRoute", "FIELD: path <Object>", "type\t<string>")
	out = k.ok("explain", "certificate.spec.dnsNames")
	mustContain(t, "explain certificate", out, "KIND:       Certificate", "FIELD: dnsNames <[]string>")
	out = k.ok("explain", "prometheus.spec.alerting")
	mustContain(t, "explain prometheus", out, "KIND:       Prometheus", "FIELD: alerting <Object>", "alertmanagers\t<[]Object> -required-")

	// The schemas' validation, with upstream's messages.
	out = k.failsIn(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: no-issuer
spec:
  secretName: x
`, "apply", "--server-side", "-f", "-")
	mustContain(t, "certificate without issuerRef", out, `spec.issuerRef: Required value`)
	out = k.failsIn(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bad-port
spec:
  rules:
  - backendRefs:
    - name: svc
`, "apply", "--server-side", "-f", "-")
	mustContain(t, "backendRef without a port (a CEL rule)", out, "Must have port for Service reference")

	// The Gateway API's own ValidatingAdmissionPolicy, shipped beside
	// its definitions: it refuses definitions of a release before v1.5.
	dir := moduleDir(t, "sigs.k8s.io/gateway-api", "v1.6.3")
	vap := filepath.Join(dir, "config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml")
	out = k.ok("apply", "--server-side", "-f", vap)
	mustContain(t, "apply the Gateway API's policy", out, "validatingadmissionpolicy.admissionregistration.k8s.io/safe-upgrades.gateway.networking.k8s.io serverside-applied",
		"validatingadmissionpolicybinding.admissionregistration.k8s.io/safe-upgrades.gateway.networking.k8s.io serverside-applied")
	old := "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: tcproutes.gateway.networking.k8s.io\n" +
		"  annotations:\n    gateway.networking.k8s.io/bundle-version: v1.4.0\n"
	waitFor(t, k, 30*time.Second, "the Gateway API's policy in effect", func() bool {
		out, err := k.run(old, "apply", "--server-side", "--field-manager=downgrade", "--force-conflicts", "-f", "-")
		return err != nil && strings.Contains(out, "ValidatingAdmissionPolicy")
	})
	out = k.failsIn(old, "apply", "--server-side", "--field-manager=downgrade", "--force-conflicts", "-f", "-")
	mustContain(t, "a definition of v1.4.0 under the Gateway API's policy", out,
		`ValidatingAdmissionPolicy 'safe-upgrades.gateway.networking.k8s.io' with binding 'safe-upgrades.gateway.networking.k8s.io' denied request: Installing CRDs with version before v1.5.0 is prohibited by default.`)

	// A policy of one's own: no Deployment of more than 3 replicas.
	k.okIn(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: max-replicas
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas <= 3"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: max-replicas
spec:
  policyName: max-replicas
  validationActions: [Deny]
`, "apply", "-f", "-")
	n := 0
	waitFor(t, k, 30*time.Second, "the replicas policy in effect", func() bool {
		n++
		_, err := k.run("", "create", "deployment", fmt.Sprintf("big-%d", n), "--image=busybox", "--replicas=5")
		return err != nil
	})
	out = k.fails("create", "deployment", "big", "--image=busybox", "--replicas=5")
	mustContain(t, "a deployment of 5 replicas", out,
		`deployments.apps "big" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas' denied request: failed expression: object.spec.replicas <= 3`)
	k.ok("create", "deployment", "small", "--image=busybox", "--replicas=3")
	mustContain(t, "kubectl get validatingadmissionpolicies", k.ok("get", "validatingadmissionpolicies"), "VALIDATIONS", "PARAMKIND", "max-replicas")

	// Deleting a definition deletes its objects.
	k.ok("delete", "crd", "certificates.cert-manager.io", "--timeout=60s")
	out = k.fails("get", "certificates")
	// kubectl says so from a fresh discovery, or from the server's 404
	// when its cached discovery still has them.
	if !strings.Contains(out, `the server doesn't have a resource type "certificates"`) && !strings.Contains(out, "the server could not find the requested resource") {
		t.Errorf("certificates after their definition went:\n%s", out)
	}
}

// moduleDir downloads module@version through the module proxy and
// returns its directory; it skips t when the module cannot be downloaded
// here.
func moduleDir(t *testing.T, module, version string) string {
	t.Helper()
	out, err := goCommand(os.TempDir(), []string{"GOFLAGS=-mod=mod"}, "mod", "download", "-json", module+"@"+version)
	if err != nil {
		if skip := downloadSkip(out); skip != "" {
			t.Skipf("cannot download %s@%s: %s", module, version, skip)
		}
		t.Fatalf("go mod download %s@%s: %v\n%s", module, version, err, out)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s@%s: no directory in %q (%v)", module, version, out, err)
	}
	return info.Dir
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// resourceVersions maps each object of the kinds (namespace/kind/name) to
// its resourceVersion.
func resourceVersions(t *testing.T, k kubectl, kinds string) map[string]string {
	t.Helper()
	var list struct {
		Items []struct {
			Kind     string
			Metadata struct{ Namespace, Name, ResourceVersion string }
		}
	}
	if err := json.Unmarshal([]byte(k.ok("get", kinds, "-A", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, it := range list.Items {
		out[it.Metadata.Namespace+"/"+it.Kind+"/"+it.Metadata.Name] = it.Metadata.ResourceVersion
	}
	return out
}
