package e2e

import (
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestSecurityAdmission drives impersonation (kubectl --as) and Pod
// Security Admission with the stock kubectl against `skiff server
// --authorization-mode=RBAC`.
func TestSecurityAdmission(t *testing.T) {
	c := framework.StartBinary(t, skiffBin, "--authorization-mode=RBAC")
	k := kubectl{t: t, c: c}

	t.Run("impersonation", func(t *testing.T) {
		// The admin (system:masters) may act as anyone.
		out := k.ok("auth", "whoami", "--as=jane", "--as-group=dev", "--as-uid=u-jane")
		mustContain(t, "whoami --as=jane", out, "Username", "jane", "UID", "u-jane", "Groups", "[dev system:authenticated]")
		// And the request is then jane's, who may do nothing.
		out = k.fails("get", "secrets", "-n", "default", "--as=jane")
		mustContain(t, "get secrets --as=jane", out,
			`Error from server (Forbidden): secrets is forbidden: User "jane" cannot list resource "secrets" in API group "" in the namespace "default"`)
		// A binding for jane takes effect for the admin acting as jane.
		k.ok("create", "clusterrolebinding", "jane-view", "--clusterrole=view", "--user=jane")
		k.waitFor(t, "jane can list pods", 10*time.Second, func() (bool, string) {
			out, err := k.run("", "get", "pods", "-n", "default", "--as=jane")
			return err == nil, out
		})
	})

	t.Run("pod security", func(t *testing.T) {
		k.ok("create", "namespace", "psa")
		k.ok("label", "namespace", "psa", "pod-security.kubernetes.io/warn=baseline")
		out := k.okIn(hostPathPod, "apply", "-f", "-")
		mustContain(t, "a hostPath pod under warn=baseline", out,
			`Warning: would violate PodSecurity "baseline:latest": hostPath volumes (volume "h")`, "pod/h created")
		out = k.ok("label", "namespace", "psa", "pod-security.kubernetes.io/enforce=baseline")
		mustContain(t, "enforce=baseline over a hostPath pod", out,
			`Warning: existing pods in namespace "psa" violate the new PodSecurity enforce level "baseline:latest"`,
			"Warning: h: hostPath volumes", "namespace/psa labeled")
		out = k.fails("run", "priv", "-n", "psa", "--image=busybox", "--privileged")
		mustContain(t, "a privileged pod under enforce=baseline", out,
			`Error from server (Forbidden): pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "priv" must not set securityContext.privileged=true)`)
		out = k.fails("label", "namespace", "psa", "--overwrite", "pod-security.kubernetes.io/enforce=strict")
		mustContain(t, "an invalid level", out, `The Namespace "psa" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted`)
	})
}

const hostPathPod = `apiVersion: v1
kind: Pod
metadata:
  name: h
  namespace: psa
spec:
  containers:
  - name: c
    image: busybox
  volumes:
  - name: h
    hostPath:
      path: /etc
`
