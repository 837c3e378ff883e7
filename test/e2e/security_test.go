package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// TestSecurityAdmission drives the trust boundary with the stock kubectl
// against `skiff server` on its defaults (Node,RBAC): RBAC for service
// accounts and users, escalation prevention, can-i, the Node authorizer,
// impersonation (kubectl --as) and Pod Security Admission.
func TestSecurityAdmission(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte(
		"node-a-token,system:node:node-a,na,system:nodes\n"+
			"node-b-token,system:node:node-b,nb,system:nodes\n"+
			"eddie-token,eddie,u-eddie,\n"+
			"ada-token,ada,u-ada,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartBinary(t, skiffBin, "--token-auth-file", tokens)
	k := kubectl{t: t, c: c}
	k.ok("create", "namespace", "rbac-e2e")

	t.Run("a new service account", func(t *testing.T) {
		k.t = t
		k.ok("create", "serviceaccount", "app", "-n", "rbac-e2e")
		token := strings.TrimSpace(k.ok("create", "token", "app", "-n", "rbac-e2e"))
		app := k.as("app", token)
		const denied = `Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:rbac-e2e:app" cannot list resource "secrets" in API group "" in the namespace "rbac-e2e"`
		mustContain(t, "the account listing secrets", app.fails("get", "secrets", "-n", "rbac-e2e"), denied)
		mustContain(t, "the account listing pods", app.fails("get", "pods", "-n", "rbac-e2e"),
			`Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:rbac-e2e:app" cannot list resource "pods" in API group "" in the namespace "rbac-e2e"`)
		mustContain(t, "can-i '*' '*'", app.fails("auth", "can-i", "*", "*"), "no")

		// A view RoleBinding takes effect within a second.
		cs := tokenClient(t, c, token)
		k.ok("create", "rolebinding", "app-view", "--clusterrole=view", "--serviceaccount=rbac-e2e:app", "-n", "rbac-e2e")
		bound := time.Now()
		for {
			_, err := cs.CoreV1().Pods("rbac-e2e").List(context.Background(), metav1.ListOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsForbidden(err) {
				t.Fatal(err)
			}
			if time.Since(bound) > time.Second {
				t.Fatalf("still %v more than 1 s after the view binding", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("the view binding took effect in %s", time.Since(bound).Round(time.Millisecond))
		app.ok("get", "pods", "-n", "rbac-e2e")
		// view does not read Secrets, as upstream's.
		mustContain(t, "the viewer listing secrets", app.fails("get", "secrets", "-n", "rbac-e2e"), denied)

		// can-i --list tells what the requests get.
		list := app.ok("auth", "can-i", "--list", "-n", "rbac-e2e")
		mustContain(t, "can-i --list", list, "pods ", "[get list watch]", "selfsubjectaccessreviews.authorization.k8s.io")
		for _, line := range strings.Split(list, "\n") {
			if strings.HasPrefix(line, "secrets ") {
				t.Fatalf("can-i --list names secrets for a viewer: %q", line)
			}
		}
		mustContain(t, "can-i list pods", app.ok("auth", "can-i", "list", "pods", "-n", "rbac-e2e"), "yes")
		mustContain(t, "can-i list secrets", app.fails("auth", "can-i", "list", "secrets", "-n", "rbac-e2e"), "no")
		mustContain(t, "can-i delete pods", app.fails("auth", "can-i", "delete", "pods", "-n", "rbac-e2e"), "no")
		mustContain(t, "deleting a pod", app.fails("delete", "pod", "any", "-n", "rbac-e2e"),
			`Error from server (Forbidden): pods "any" is forbidden: User "system:serviceaccount:rbac-e2e:app" cannot delete resource "pods" in API group "" in the namespace "rbac-e2e"`)
	})

	t.Run("escalation", func(t *testing.T) {
		k.t = t
		k.ok("create", "rolebinding", "eddie-edit", "--clusterrole=edit", "--user=eddie", "-n", "rbac-e2e")
		k.ok("create", "rolebinding", "ada-admin", "--clusterrole=admin", "--user=ada", "-n", "rbac-e2e")
		eddie, ada := k.as("eddie", "eddie-token"), k.as("ada", "ada-token")
		k.waitFor(t, "eddie can list configmaps", 10*time.Second, func() (bool, string) {
			out, err := eddie.run("", "get", "configmaps", "-n", "rbac-e2e")
			return err == nil, out
		})
		// edit holds no RBAC verbs at all.
		mustContain(t, "edit binding cluster-admin", eddie.fails("create", "rolebinding", "steal", "--clusterrole=cluster-admin", "--user=eddie", "-n", "rbac-e2e"),
			`failed to create rolebinding: rolebindings.rbac.authorization.k8s.io is forbidden: User "eddie" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "rbac-e2e"`)
		k.waitFor(t, "ada can list rolebindings", 10*time.Second, func() (bool, string) {
			out, err := ada.run("", "get", "rolebindings", "-n", "rbac-e2e")
			return err == nil, out
		})
		// admin may bind, but only what it holds.
		mustContain(t, "admin binding cluster-admin", ada.fails("create", "rolebinding", "steal", "--clusterrole=cluster-admin", "--user=ada", "-n", "rbac-e2e"),
			`failed to create rolebinding: rolebindings.rbac.authorization.k8s.io "steal" is forbidden: user "ada" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`)
		ada.ok("create", "rolebinding", "eddie-view", "--clusterrole=view", "--user=eddie", "-n", "rbac-e2e")
		// Impersonation is for those granted it.
		// (The refusal names the constrained-impersonation verb of 1.37,
		// which eddie lacks as well as the legacy impersonate.)
		mustContain(t, "eddie acting as jane", eddie.fails("get", "pods", "-n", "rbac-e2e", "--as=jane"),
			`Error from server (Forbidden): pods is forbidden: User "eddie" cannot impersonate-on:user-info:list resource "pods"`)
	})

	t.Run("node isolation", func(t *testing.T) {
		k.t = t
		for _, n := range []string{"node-a", "node-b"} {
			k.okIn("apiVersion: v1\nkind: Node\nmetadata:\n  name: "+n+"\n", "create", "-f", "-")
			k.ok("create", "secret", "generic", "secret-of-"+n, "-n", "rbac-e2e", "--from-literal=v=1")
			k.okIn(secretPod(n), "create", "-f", "-")
		}
		nodeA := k.as("node-a", "node-a-token")
		k.waitFor(t, "node-a reads the secret of its pod", 10*time.Second, func() (bool, string) {
			out, err := nodeA.run("", "get", "secret", "secret-of-node-a", "-n", "rbac-e2e")
			return err == nil, out
		})
		mustContain(t, "node-a reading node-b's secret", nodeA.fails("get", "secret", "secret-of-node-b", "-n", "rbac-e2e"),
			`Error from server (Forbidden): secrets "secret-of-node-b" is forbidden: User "system:node:node-a" cannot get resource "secrets" in API group "" in the namespace "rbac-e2e": no relationship found between node 'node-a' and this object`)
		mustContain(t, "node-a listing secrets", nodeA.fails("get", "secrets", "-n", "rbac-e2e"), "Forbidden")
		nodeA.ok("label", "node", "node-a", "e2e=own")
		mustContain(t, "node-a labelling node-b", nodeA.fails("label", "node", "node-b", "e2e=stolen"),
			`Error from server (Forbidden): nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"`)
	})

	t.Run("impersonation", func(t *testing.T) {
		k.t = t
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
		k.t = t
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
		k.ok("create", "namespace", "psa-restricted")
		k.ok("label", "namespace", "psa-restricted", "pod-security.kubernetes.io/enforce=restricted")
		out = k.fails("run", "priv", "-n", "psa-restricted", "--image=busybox", "--privileged")
		mustContain(t, "a privileged pod under enforce=restricted", out,
			`Error from server (Forbidden): pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged (container "priv" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "priv" must set securityContext.allowPrivilegeEscalation=false)`)
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

// secretPod is a pod bound to node that mounts the Secret secret-of-<node>.
func secretPod(node string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: pod-on-` + node + `
  namespace: rbac-e2e
spec:
  nodeName: ` + node + `
  containers:
  - name: c
    image: busybox
    volumeMounts:
    - name: s
      mountPath: /s
  volumes:
  - name: s
    secret:
      secretName: secret-of-` + node + `
`
}

// tokenClient is a client-go client of the cluster authenticating with a
// bearer token only.
func tokenClient(t *testing.T, c *framework.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(c.Port), BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(c.DataDir, "tls", "ca.crt")}})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
