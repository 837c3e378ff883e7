package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// testLocalPathStorage is issue 18's acceptance run, on TestKubelet's
// one-node cluster with the stock kubectl: a 2-replica StatefulSet whose
// claims come from the default class keeps each pod's file across a pod
// deletion, a scale to 0 and back, and a restart of the server; deleting
// the claims removes the volumes and their directories, a Retain class
// keeps them; a claim on a class that does not exist stays Pending with
// upstream's event, and a ReadWriteOncePod claim in use refuses a second
// pod as upstream's scheduler does.
func testLocalPathStorage(t *testing.T, k kubectl, c *framework.Cluster, busybox string, waitRunning func(*testing.T, string) string) {
	waitFor, jsonpath := k.waitFor, k.jsonpath
	storage := filepath.Join(c.DataDir, "storage")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := k.run("", "describe", "sts,pod,pvc,pv")
			t.Logf("kubectl describe sts,pod,pvc,pv:\n%s", tail(out, 120))
		}
	})

	out := k.ok("get", "storageclass")
	mustContain(t, "kubectl get storageclass", out, "local-path (default)", "skiff.io/local-path", "Delete", "WaitForFirstConsumer", "true")

	// Each pod writes its name and a random number once: the same text
	// later means the same data.
	k.okIn(fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: %s
        command: ["sh", "-c", "[ -f /data/id ] || echo $(hostname) $RANDOM$RANDOM > /data/id; sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
`, busybox), "apply", "-f", "-")
	readIDs := func(t *testing.T) [2]string {
		t.Helper()
		var ids [2]string
		for i := range ids {
			pod := fmt.Sprintf("web-%d", i)
			waitRunning(t, pod)
			waitFor(t, pod+"'s file", 30*time.Second, func() (bool, string) {
				out, err := k.run("", "exec", pod, "--", "cat", "/data/id")
				ids[i] = strings.TrimSpace(out)
				return err == nil && strings.HasPrefix(ids[i], pod+" "), out
			})
		}
		return ids
	}
	ids := readIDs(t)
	same := func(t *testing.T, after string) {
		t.Helper()
		if got := readIDs(t); got != ids {
			t.Fatalf("after %s the pods read %q, want %q", after, got, ids)
		}
	}

	// The volumes: provisioned on this node, in its data dir.
	var dirs []string
	for i := range 2 {
		claim := fmt.Sprintf("data-web-%d", i)
		pv := jsonpath("pvc/"+claim, "{.spec.volumeName}")
		if phase := jsonpath("pvc/"+claim, "{.status.phase}"); phase != "Bound" || pv == "" {
			t.Fatalf("claim %s: phase %q, volume %q", claim, phase, pv)
		}
		path := jsonpath("pv/"+pv, "{.spec.local.path}")
		if path != filepath.Join(storage, pv) {
			t.Fatalf("volume %s at %q, want %q", pv, path, filepath.Join(storage, pv))
		}
		b, err := os.ReadFile(filepath.Join(path, "id"))
		if err != nil || strings.TrimSpace(string(b)) != ids[i] {
			t.Fatalf("the node's copy of %s: %q, %v", claim, b, err)
		}
		dirs = append(dirs, path)
	}
	out = k.ok("get", "pv,pvc")
	mustContain(t, "kubectl get pv,pvc", out, "default/data-web-0", "local-path", "64Mi", "RWO", "Delete", "Bound")

	// Expansion: the class allows it; volume and claim take the new size.
	k.ok("patch", "pvc", "data-web-0", "-p", `{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}`)
	waitFor(t, "data-web-0 expanded", 30*time.Second, func() (bool, string) {
		pv := jsonpath("pvc/data-web-0", "{.spec.volumeName}")
		s := jsonpath("pvc/data-web-0", "{.status.capacity.storage}") + " " + jsonpath("pv/"+pv, "{.spec.capacity.storage}")
		return s == "128Mi 128Mi", s
	})

	k.ok("delete", "pod", "web-0")
	waitFor(t, "web-0 recreated", 60*time.Second, func() (bool, string) {
		s := jsonpath("pod/web-0", "{.metadata.deletionTimestamp}/{.status.phase}")
		return s == "/Running", s
	})
	same(t, "kubectl delete pod web-0")

	k.ok("scale", "statefulset", "web", "--replicas=0")
	waitFor(t, "no pods", 60*time.Second, func() (bool, string) {
		out, _ := k.run("", "get", "pods", "-l", "app=web", "-o", "name")
		return strings.TrimSpace(out) == "", out
	})
	k.ok("scale", "statefulset", "web", "--replicas=2")
	same(t, "scaling to 0 and back to 2")

	c.Restart(t)
	same(t, "a restart of the server")

	// Delete: the claims' volumes and directories go.
	k.ok("delete", "statefulset", "web")
	k.ok("delete", "pvc", "data-web-0", "data-web-1", "--wait=false")
	waitFor(t, "the volumes and their directories gone", 60*time.Second, func() (bool, string) {
		out, _ := k.run("", "get", "pv", "-o", "name")
		for _, d := range dirs {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				return false, out + " " + d + " still there"
			}
		}
		return !strings.Contains(out, "pvc-"), out
	})

	// Retain: the volume stays Released with its data.
	k.okIn(fmt.Sprintf(`apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: keep}
provisioner: skiff.io/local-path
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: kept}
spec:
  storageClassName: keep
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: keeper}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", "echo kept > /data/f; sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: kept}
`, busybox), "apply", "-f", "-")
	waitRunning(t, "keeper")
	kept := jsonpath("pvc/kept", "{.spec.volumeName}")
	waitFor(t, "the kept file on the node", 30*time.Second, func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(storage, kept, "f"))
		return err == nil && string(b) == "kept\n", fmt.Sprint(string(b), err)
	})
	k.ok("delete", "pod", "keeper")
	k.ok("delete", "pvc", "kept")
	waitFor(t, "the Retain volume Released", 60*time.Second, func() (bool, string) {
		s := jsonpath("pv/"+kept, "{.status.phase}")
		return s == "Released", s
	})
	if b, err := os.ReadFile(filepath.Join(storage, kept, "f")); err != nil || string(b) != "kept\n" {
		t.Fatalf("the Retain volume's data: %q, %v", b, err)
	}
	k.ok("delete", "pv", kept)

	// A class that does not exist: Pending, with upstream's event.
	k.okIn(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: nowhere}
spec:
  storageClassName: missing
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
`, "apply", "-f", "-")
	waitFor(t, "the ProvisioningFailed event", 30*time.Second, func() (bool, string) {
		out, _ := k.run("", "get", "events", "--field-selector", "involvedObject.name=nowhere", "-o", "custom-columns=R:.reason,M:.message", "--no-headers")
		return strings.Contains(out, `ProvisioningFailed   storageclass.storage.k8s.io "missing" not found`), out
	})
	if phase := jsonpath("pvc/nowhere", "{.status.phase}"); phase != "Pending" {
		t.Fatalf("claim on a missing class: phase %q, want Pending", phase)
	}

	// ReadWriteOncePod: a second pod on the claim is not scheduled.
	pod := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: %s, command: ["sleep", "3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: solo}
`, name, busybox)
	}
	k.okIn(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: solo}
spec:
  accessModes: [ReadWriteOncePod]
  resources: {requests: {storage: 64Mi}}
`, "apply", "-f", "-")
	k.okIn(pod("solo-a"), "apply", "-f", "-")
	waitRunning(t, "solo-a")
	k.okIn(pod("solo-b"), "apply", "-f", "-")
	waitFor(t, "solo-b refused", 30*time.Second, func() (bool, string) {
		msg := jsonpath("pod/solo-b", `{.status.conditions[?(@.type=="PodScheduled")].message}`)
		return strings.Contains(msg, "1 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"), msg
	})
	k.ok("delete", "pod", "solo-a", "solo-b")
	k.ok("delete", "pvc", "solo", "nowhere", "--wait=false")
}

// testHelmPersistence installs testdata/chart-persistent (a Deployment
// whose pod keeps its data on a claim of the default class) with the Helm
// CLI, upgrades it with a new value, which replaces the pod, and checks
// that the new pod finds the first one's data on the same volume;
// uninstalling deletes the claim, and its volume goes with it.
func testHelmPersistence(t *testing.T, k kubectl, c *framework.Cluster) {
	helm := helmCLI(t, helmBuild.get(t), c, "default")
	chart, err := filepath.Abs("testdata/chart-persistent")
	if err != nil {
		t.Fatal(err)
	}
	// read returns the release's pod's /data files once its pod is
	// Running and has written message.
	read := func(t *testing.T, message string) (first, log string) {
		t.Helper()
		k.waitFor(t, "the pod wrote "+message, 60*time.Second, func() (bool, string) {
			pod := k.jsonpath("pods", `{range .items[?(@.metadata.labels.app\.kubernetes\.io/instance=="keeper")]}{.metadata.deletionTimestamp}/{.status.phase}/{.metadata.name}{"\n"}{end}`)
			name, ok := strings.CutPrefix(strings.TrimSpace(pod), "/Running/")
			if !ok || strings.Contains(name, "\n") {
				return false, pod
			}
			out, err := k.run("", "exec", name, "--", "sh", "-c", "cat /data/first; echo ---; cat /data/log")
			first, log, _ = strings.Cut(strings.TrimSpace(out), "\n---\n")
			return err == nil && strings.HasSuffix(log, message), out
		})
		return first, log
	}
	out := helm("install", "keeper", chart, "--wait", "--timeout=90s")
	mustContain(t, "helm install", out, "STATUS: deployed", "REVISION: 1")
	first, _ := read(t, "v1")
	if !strings.HasPrefix(first, "v1 ") {
		t.Fatalf("after install /data/first is %q", first)
	}
	volume := k.jsonpath("pvc/keeper-data", "{.spec.volumeName}")
	if sc := k.jsonpath("pvc/keeper-data", "{.spec.storageClassName}"); sc != "local-path" || volume == "" {
		t.Fatalf("the release's claim: class %q, volume %q", sc, volume)
	}

	out = helm("upgrade", "keeper", chart, "--set", "message=v2", "--wait", "--timeout=90s")
	mustContain(t, "helm upgrade", out, "STATUS: deployed", "REVISION: 2")
	again, log := read(t, "v2")
	if again != first || log != "v1\nv2" {
		t.Fatalf("after the upgrade the pod reads first %q and log %q, want %q and v1, v2", again, log, first)
	}
	if v := k.jsonpath("pvc/keeper-data", "{.spec.volumeName}"); v != volume {
		t.Fatalf("the claim's volume changed from %s to %s", volume, v)
	}

	helm("uninstall", "keeper", "--wait", "--timeout=90s")
	k.waitFor(t, "the release's volume gone", 60*time.Second, func() (bool, string) {
		out, err := k.run("", "get", "pv", "-o", "name")
		_, statErr := os.Stat(filepath.Join(c.DataDir, "storage", volume))
		return err == nil && !strings.Contains(out, volume) && os.IsNotExist(statErr), out
	})
}
