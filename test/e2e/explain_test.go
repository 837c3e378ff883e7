package e2e

import (
	"strings"
	"testing"

	"github.com/skiff-io/skiff/test/framework"
)

const explainDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: explained
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: explained}
  template:
    metadata:
      labels: {app: explained}
    spec:
      containers:
      - name: web
        image: skiff.io/test/server:v1
        ports:
        - containerPort: 8080
      - name: side
        image: docker.io/library/busybox:1.36
`

// TestExplain drives what the server's OpenAPI documents feed in the stock
// kubectl: explain (v3 schemas), client-side apply (strategic merge
// patches computed from the v3 schemas' patch strategies and merge keys)
// and server-side field validation.
func TestExplain(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)
	k := kubectl{t: t, c: c}

	out := k.ok("explain", "pod.spec.containers.livenessProbe")
	mustContain(t, "explain livenessProbe", out,
		"KIND:       Pod", "VERSION:    v1",
		"FIELD: livenessProbe <Probe>",
		"Periodic probe of container liveness. Container will be restarted if the",
		"Probe describes a health check to be performed against a container to",
		"httpGet\t<HTTPGetAction>", "initialDelaySeconds\t<integer>")

	out = k.ok("explain", "deployment.spec", "--recursive")
	mustContain(t, "explain --recursive", out,
		"GROUP:      apps", "KIND:       Deployment",
		"selector\t<LabelSelector> -required-",
		"template\t<PodTemplateSpec> -required-",
		"    spec\t<PodSpec>",
		"      containers\t<[]Container> -required-",
		"        livenessProbe\t<Probe>",
		"        imagePullPolicy\t<string>",
		"enum: Always, IfNotPresent, Never")

	out = k.ok("explain", "service.spec.ports.targetPort")
	mustContain(t, "explain IntOrString", out, "FIELD: targetPort <IntOrString>", "Number or name of the port to access on the pods")

	out = k.fails("explain", "pod.spec.nosuchfield")
	mustContain(t, "explain unknown field", out, `field "nosuchfield" does not exist`)

	// Client-side apply: the second apply's patch is computed from the v3
	// schema: containers merge by name, so changing one image keeps both.
	k.okIn(explainDeployment, "apply", "-f", "-")
	changed := strings.Replace(explainDeployment, "server:v1", "server:v2", 1)
	out = k.okIn(changed, "apply", "-f", "-")
	mustContain(t, "re-apply", out, "deployment.apps/explained configured")
	if got := k.ok("get", "deploy", "explained", "-o", "jsonpath={.spec.template.spec.containers[*].image}"); got != "skiff.io/test/server:v2 docker.io/library/busybox:1.36" {
		t.Fatalf("images after re-apply = %q", got)
	}

	// Strict validation is the server's: kubectl sees fieldValidation
	// among the patch operation's parameters and leaves it to the server.
	bogus := strings.Replace(explainDeployment, "        ports:\n", "        bogusField: 1\n        ports:\n", 1)
	bogus = strings.Replace(bogus, "name: explained\n", "name: bogus\n", 1)
	out, err := k.run(bogus, "apply", "--validate=strict", "-f", "-")
	if err == nil || !strings.Contains(out, `unknown field "spec.template.spec.containers[0].bogusField"`) {
		t.Fatalf("apply --validate=strict: want the server's unknown field error, got %v:\n%s", err, out)
	}
	if !strings.Contains(out, "Error from server") {
		t.Fatalf("apply --validate=strict: the error is not the server's:\n%s", out)
	}
}
