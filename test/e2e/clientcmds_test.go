package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/skiff-io/skiff/test/framework"
)

// The kubectl commands that lean on the API beyond plain CRUD: auth
// whoami and can-i (the review APIs), diff (server-side dry run), edit,
// apply --prune, wait and get all. `skiff server --disable-agent` with one
// simulated node, so that pods run.
func TestClientCommands(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)
	k := kubectl{t: t, c: c}
	framework.StartSim(t, skiffBin, c, "cmds", "--nodes=1", "--name-prefix=cmds-",
		"--heartbeat-interval=1s", "--run-time=1s", "--start-delay=100ms")
	k.ok("create", "namespace", "cmds")
	dir := t.TempDir()

	t.Run("auth whoami", func(t *testing.T) {
		out := k.ok("auth", "whoami")
		mustContain(t, "whoami", out, "ATTRIBUTE", "VALUE", "Username", "system:admin", "Groups", "[system:masters system:authenticated]")
		var review authenticationv1.SelfSubjectReview
		out = k.ok("auth", "whoami", "-o", "json")
		if err := json.Unmarshal([]byte(out), &review); err != nil {
			t.Fatalf("whoami -o json: %v\n%s", err, out)
		}
		if review.Kind != "SelfSubjectReview" || review.APIVersion != "authentication.k8s.io/v1" || review.Status.UserInfo.Username != "system:admin" {
			t.Fatalf("whoami -o json: %+v", review)
		}
	})

	t.Run("auth can-i", func(t *testing.T) {
		if out := k.ok("auth", "can-i", "create", "deployments", "-n", "cmds"); strings.TrimSpace(out) != "yes" {
			t.Fatalf("can-i create deployments: %q", out)
		}
		if out := k.ok("auth", "can-i", "get", "/healthz"); strings.TrimSpace(out) != "yes" {
			t.Fatalf("can-i get /healthz: %q", out)
		}
		out := k.ok("auth", "can-i", "--list", "-n", "cmds")
		mustContain(t, "can-i --list", out, "Resources", "Non-Resource URLs", "*.*", "[*]")
	})

	t.Run("diff", func(t *testing.T) {
		path := filepath.Join(dir, "diff.yaml")
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: cmds\ndata:\n  color: blue\n"
		writeFile(t, path, cm)
		out, err := k.run("", "diff", "-f", path)
		if exitCode(err) != 1 || !strings.Contains(out, "+  color: blue") {
			t.Fatalf("diff of an object not yet created: want exit 1 and its lines, got %v:\n%s", err, out)
		}
		k.ok("apply", "-f", path)
		if out, err := k.run("", "diff", "-f", path); err != nil || out != "" {
			t.Fatalf("diff of an unchanged manifest: want exit 0 and no output, got %v:\n%s", err, out)
		}
		writeFile(t, path, strings.Replace(cm, "color: blue", "color: red", 1))
		out, err = k.run("", "diff", "-f", path)
		if exitCode(err) != 1 {
			t.Fatalf("diff of a changed manifest: want exit 1, got %v:\n%s", err, out)
		}
		mustContain(t, "diff", out, "-  color: blue", "+  color: red", "v1.ConfigMap.cmds.settings")
		// The server's dry run stored nothing.
		if got := k.ok("get", "cm", "settings", "-n", "cmds", "-o", "jsonpath={.data.color}"); got != "blue" {
			t.Fatalf("after diff the stored color is %q, want blue", got)
		}
	})

	t.Run("edit", func(t *testing.T) {
		editor := filepath.Join(dir, "editor.sh")
		writeFile(t, editor, "#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
		if err := os.Chmod(editor, 0o755); err != nil {
			t.Fatal(err)
		}
		env := []string{"KUBE_EDITOR=" + editor}
		out := kubectlEnv(t, c, env, "edit", "cm", "settings", "-n", "cmds")
		mustContain(t, "edit", out, "configmap/settings edited")
		if got := k.ok("get", "cm", "settings", "-n", "cmds", "-o", "jsonpath={.data.color}"); got != "green" {
			t.Fatalf("after edit the color is %q, want green", got)
		}
		// The same edit again finds nothing to change.
		out = kubectlEnv(t, c, env, "edit", "cm", "settings", "-n", "cmds")
		mustContain(t, "second edit", out, "Edit cancelled, no changes made.")
		// An edit the server refuses: kubectl reopens the editor with the
		// server's reason, the editor makes the same change again, and
		// kubectl gives up with exit 1.
		bad := filepath.Join(dir, "bad-editor.sh")
		writeFile(t, bad, "#!/bin/sh\nsed -i 's/color: green/bad key!: green/' \"$1\"\n")
		if err := os.Chmod(bad, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "edit", "cm", "settings", "-n", "cmds")
		cmd.Env = append(os.Environ(), "KUBE_EDITOR="+bad, "TMPDIR="+dir)
		b, err := cmd.CombinedOutput()
		if exitCode(err) != 1 || !strings.Contains(string(b), `configmaps "settings" is invalid`) {
			t.Fatalf("an invalid edit: want exit 1, got %v:\n%s", err, b)
		}
		// The copy kubectl keeps carries the server's reason in comments.
		_, kept, _ := strings.Cut(string(b), "A copy of your changes has been stored to \"")
		kept, _, _ = strings.Cut(kept, "\"")
		copyOf, err := os.ReadFile(kept)
		if err != nil {
			t.Fatalf("the copy of the refused edit: %v\n%s", err, b)
		}
		mustContain(t, "refused edit", string(copyOf), "# * data[bad key!]: Invalid value", "bad key!: green")
		if got := k.ok("get", "cm", "settings", "-n", "cmds", "-o", "jsonpath={.data.color}"); got != "green" {
			t.Fatalf("after a refused edit the color is %q, want green", got)
		}
	})

	t.Run("apply --prune", func(t *testing.T) {
		pruneDir := filepath.Join(dir, "prune")
		if err := os.Mkdir(pruneDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"one", "two"} {
			writeFile(t, filepath.Join(pruneDir, name+".yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+name+
				"\n  namespace: cmds\n  labels: {app: x}\ndata:\n  k: "+name+"\n")
		}
		// Not applied (no last-applied-configuration): never pruned.
		k.ok("create", "cm", "created", "-n", "cmds", "--from-literal=k=v")
		k.ok("label", "cm", "created", "-n", "cmds", "app=x")
		prune := []string{"apply", "--prune", "-l", "app=x", "-f", pruneDir, "--prune-allowlist=core/v1/ConfigMap"}
		out := k.ok(prune...)
		mustContain(t, "apply --prune", out, "configmap/one created", "configmap/two created")
		if err := os.Remove(filepath.Join(pruneDir, "two.yaml")); err != nil {
			t.Fatal(err)
		}
		out = k.ok(prune...)
		mustContain(t, "apply --prune without two", out, "configmap/one unchanged", "configmap/two pruned")
		got := k.ok("get", "cm", "-n", "cmds", "-o", "name")
		mustContain(t, "after prune", got, "configmap/one", "configmap/created", "configmap/settings")
		if strings.Contains(got, "configmap/two") {
			t.Fatalf("configmap/two survived the prune:\n%s", got)
		}
	})

	t.Run("wait", func(t *testing.T) {
		k.ok("create", "deployment", "web", "-n", "cmds", "--image=skiff.io/test/server:v1", "--replicas=2")
		out := k.ok("wait", "--for=condition=Available", "deployment/web", "-n", "cmds", "--timeout=60s")
		mustContain(t, "wait Available", out, "deployment.apps/web condition met")
		out = k.ok("wait", "--for=condition=Ready", "pod", "-l", "app=web", "-n", "cmds", "--timeout=60s")
		if n := strings.Count(out, "condition met"); n != 2 {
			t.Fatalf("wait Ready -l app=web: %d pods met the condition, want 2:\n%s", n, out)
		}
		k.ok("run", "y", "-n", "cmds", "--image=busybox")
		out = k.ok("wait", "--for=jsonpath={.status.phase}=Running", "pod/y", "-n", "cmds", "--timeout=60s")
		mustContain(t, "wait jsonpath", out, "pod/y condition met")
		// --for=delete waits while a finalizer holds the object, and is
		// done once it is gone (silently when it is gone already, as
		// upstream).
		k.okIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: cmds\n  finalizers: [skiff.io/hold]\n", "apply", "-f", "-")
		k.ok("delete", "cm", "held", "-n", "cmds", "--wait=false")
		out, err := k.run("", "wait", "--for=delete", "cm/held", "-n", "cmds", "--timeout=1s")
		if exitCode(err) != 1 || !strings.Contains(out, "timed out waiting for the condition") {
			t.Fatalf("wait for the deletion of a held object: want a timeout, got %v:\n%s", err, out)
		}
		k.ok("patch", "cm", "held", "-n", "cmds", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
		k.ok("wait", "--for=delete", "cm/held", "-n", "cmds", "--timeout=60s")
		if out, err := k.run("", "get", "cm", "held", "-n", "cmds"); err == nil || !strings.Contains(out, "NotFound") {
			t.Fatalf("held configmap after wait --for=delete: %v:\n%s", err, out)
		}
		// A condition that never comes times out with exit 1.
		out, err = k.run("", "wait", "--for=condition=Bogus", "deployment/web", "-n", "cmds", "--timeout=1s")
		if exitCode(err) != 1 || !strings.Contains(out, "timed out waiting for the condition") {
			t.Fatalf("wait for a missing condition: want a timeout, got %v:\n%s", err, out)
		}
	})

	t.Run("get all", func(t *testing.T) {
		k.ok("expose", "deployment", "web", "-n", "cmds", "--port=80", "--target-port=8080")
		out := k.ok("get", "all", "-n", "cmds")
		mustContain(t, "get all", out, "pod/web-", "service/web", "deployment.apps/web", "replicaset.apps/web-",
			"READY   UP-TO-DATE   AVAILABLE", "2/2", "ClusterIP", "80/TCP", "DESIRED   CURRENT   READY")
		if strings.Contains(out, "configmap/") {
			t.Fatalf("get all lists configmaps, which are not in the all category:\n%s", out)
		}
		names := k.ok("get", "all", "-n", "cmds", "-o", "name")
		for _, kind := range []string{"pod/", "service/", "deployment.apps/", "replicaset.apps/"} {
			if !strings.Contains(names, kind) {
				t.Fatalf("get all -o name lacks %s:\n%s", kind, names)
			}
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exitCode is kubectl's exit status: 0 on success, -1 when it did not run.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// kubectlEnv runs kubectl with extra environment (KUBE_EDITOR) and fails
// the test when it fails.
func kubectlEnv(t *testing.T, c *framework.Cluster, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
