package e2e

import (
	"strings"
	"testing"

	"github.com/skiff-io/skiff/test/framework"
)

const ssaManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: ssa
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ssa
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: skiff.io/test/server:v1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: ssa
data:
  color: blue
`

// TestServerSideApply drives server-side apply with the stock kubectl:
// create and update, a conflict between managers and --force-conflicts,
// the upgrade from client-side apply, --show-managed-fields and
// diff --server-side.
func TestServerSideApply(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)
	k := kubectl{t: t, c: c}

	out := k.okIn(ssaManifest, "apply", "--server-side", "-f", "-")
	mustContain(t, "server-side apply (create)", out, "namespace/ssa serverside-applied", "deployment.apps/web serverside-applied", "configmap/settings serverside-applied")
	if got := k.ok("get", "deploy", "web", "-n", "ssa", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].protocol}"); got != "2 TCP" {
		t.Fatalf("replicas and protocol after apply = %q", got)
	}

	// An update by the same manager; the port is not doubled.
	out = k.okIn(strings.Replace(ssaManifest, "color: blue", "color: green", 1), "apply", "--server-side", "-f", "-")
	mustContain(t, "server-side apply (update)", out, "configmap/settings serverside-applied")
	if got := k.ok("get", "cm", "settings", "-n", "ssa", "-o", "jsonpath={.data.color}"); got != "green" {
		t.Fatalf("color after update = %q", got)
	}
	if got := k.ok("get", "deploy", "web", "-n", "ssa", "-o", "jsonpath={.spec.template.spec.containers[0].ports[*].containerPort}"); got != "8080" {
		t.Fatalf("ports after re-apply = %q", got)
	}

	// A second manager setting replicas to another value conflicts...
	other := strings.Replace(ssaManifest, "replicas: 2", "replicas: 4", 1)
	out, err := k.run(other, "apply", "--server-side", "--field-manager=other", "-f", "-")
	if err == nil {
		t.Fatalf("conflicting apply succeeded:\n%s", out)
	}
	mustContain(t, "conflict", out, `Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas`)
	if got := k.ok("get", "deploy", "web", "-n", "ssa", "-o", "jsonpath={.spec.replicas}"); got != "2" {
		t.Fatalf("replicas after the refused apply = %q", got)
	}
	// ...and wins with --force-conflicts.
	k.okIn(other, "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-")
	if got := k.ok("get", "deploy", "web", "-n", "ssa", "-o", "jsonpath={.spec.replicas}"); got != "4" {
		t.Fatalf("replicas after the forced apply = %q", got)
	}

	// kubectl hides managedFields unless asked.
	if out := k.ok("get", "deploy", "web", "-n", "ssa", "-o", "yaml"); strings.Contains(out, "managedFields") {
		t.Fatalf("managedFields shown without --show-managed-fields:\n%s", out)
	}
	out = k.ok("get", "deploy", "web", "-n", "ssa", "-o", "yaml", "--show-managed-fields")
	mustContain(t, "--show-managed-fields", out, "managedFields:", "manager: kubectl", "manager: other", "operation: Apply", "f:replicas: {}", "fieldsType: FieldsV1")

	// diff --server-side shows what an apply would change, and changes
	// nothing. (With the values "other" set: others would conflict.)
	changed := strings.Replace(other, "color: blue", "color: blue\n  size: large", 1)
	out, err = k.run(changed, "diff", "--server-side", "-f", "-")
	if err == nil {
		t.Fatalf("diff found no difference:\n%s", out)
	}
	mustContain(t, "diff --server-side", out, "+  size: large")
	if strings.Contains(out, "replicas") {
		t.Fatalf("diff shows an unchanged field:\n%s", out)
	}
	if got := k.ok("get", "cm", "settings", "-n", "ssa", "-o", "jsonpath={.data}"); got != `{"color":"blue"}` {
		t.Fatalf("data after diff = %q", got)
	}

	// Client-side apply, then server-side apply of the same manifest: the
	// fields move to kubectl's server-side manager without a conflict.
	csa := strings.NewReplacer("name: web", "name: csa", "app: web", "app: csa", "name: settings", "name: csa-settings").Replace(ssaManifest)
	out = k.okIn(csa, "apply", "-f", "-")
	mustContain(t, "client-side apply", out, "deployment.apps/csa created", "configmap/csa-settings created")
	out = k.okIn(csa, "apply", "--server-side", "-f", "-")
	mustContain(t, "server-side after client-side", out, "deployment.apps/csa serverside-applied", "configmap/csa-settings serverside-applied")
	csa3 := strings.Replace(csa, "replicas: 2", "replicas: 3", 1)
	k.okIn(csa3, "apply", "--server-side", "-f", "-")
	if got := k.ok("get", "deploy", "csa", "-n", "ssa", "-o", "jsonpath={.spec.replicas}"); got != "3" {
		t.Fatalf("replicas after the server-side change = %q", got)
	}
	// kubectl 1.32 migrates the client-side manager's entry itself (a
	// patch of managedFields, which the server honours): the fields are
	// kubectl's Apply, the annotation kubectl-last-applied's.
	out = k.ok("get", "deploy", "csa", "-n", "ssa", "-o", "yaml", "--show-managed-fields")
	mustContain(t, "managers after the upgrade", out, "manager: kubectl-last-applied", "manager: kubectl\n", "operation: Apply")
	if strings.Contains(out, "manager: kubectl-client-side-apply") {
		t.Fatalf("the client-side manager kept its entry:\n%s", out)
	}
	// The last-applied annotation follows the server-side apply.
	mustContain(t, "last-applied annotation", k.ok("get", "deploy", "csa", "-n", "ssa", "-o", `jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`), `"replicas":3`)
}
