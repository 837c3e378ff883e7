package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestTrustBundlesAndFSGroup checks on a real node, with the stock
// kubectl, what upstream's conformance tests of ClusterTrustBundle
// projections and of secret volumes with an fsGroup found missing: a pod
// reads the certificates of the bundles its signerName and labelSelector
// select; a pod whose required projection selects nothing does not start
// (and starts once a bundle appears); a non-root pod with an fsGroup reads
// its secret files, group-owned by the fsGroup with the defaultMode (its
// primary group is not root's, as the conformance image's user 1000 has
// its own group 1000).
func TestTrustBundlesAndFSGroup(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	// A node in a network namespace of its own: its pod bridge and
	// addresses cannot meet those of another test's node on this machine.
	network := framework.NewNetwork(t, "skctb0", "10.199.81.0/24")
	c := framework.StartNodeIn(t, skiffBin, images, network.AddNode(t, "skctb-node"))
	k := kubectl{t: t, c: c}
	const busybox = "docker.io/library/busybox:1.36"
	waitFor, jsonpath := k.waitFor, k.jsonpath
	apply := func(t *testing.T, objs ...any) {
		t.Helper()
		for _, o := range objs {
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			k.okIn(string(b), "apply", "-f", "-")
		}
	}
	waitSucceeded := func(t *testing.T, pod string) string {
		t.Helper()
		waitFor(t, pod+" Succeeded", 90*time.Second, func() (bool, string) {
			s := jsonpath("pod/"+pod, "{.status.phase}")
			return s == "Succeeded", s
		})
		return k.ok("logs", pod)
	}

	const signer = "e2e.example.com/signer"
	ca := map[string]string{}
	for _, n := range []string{"alive1", "alive2", "dead", "plain", "late"} {
		ca[n] = e2eCAPEM(t, n)
	}
	bundle := func(name, signer string, labels map[string]string, pems ...string) map[string]any {
		return map[string]any{
			"apiVersion": "certificates.k8s.io/v1", "kind": "ClusterTrustBundle",
			"metadata": map[string]any{"name": name, "labels": labels},
			"spec":     map[string]any{"signerName": signer, "trustBundle": strings.Join(pems, "")},
		}
	}
	projectionPod := func(name string, projection map[string]any) map[string]any {
		return map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{
				"restartPolicy": "Never",
				"containers": []any{map[string]any{
					"name": "c", "image": busybox,
					"command":      []string{"sh", "-c", "cat /ctb/bundle.pem; stat -L -c 'mode %a' /ctb/bundle.pem"},
					"volumeMounts": []any{map[string]any{"name": "ctb", "mountPath": "/ctb"}},
				}},
				"volumes": []any{map[string]any{"name": "ctb", "projected": map[string]any{
					"sources": []any{map[string]any{"clusterTrustBundle": projection}},
				}}},
			},
		}
	}

	t.Run("bundles by signer and labels", func(t *testing.T) {
		k.t = t
		// alive2's bundle repeats alive1's certificate.
		apply(t,
			bundle("e2e.example.com:signer:alive1", signer, map[string]string{"alive": "true"}, ca["alive1"]),
			bundle("e2e.example.com:signer:alive2", signer, map[string]string{"alive": "true"}, ca["alive2"], ca["alive1"]),
			bundle("e2e.example.com:signer:dead", signer, map[string]string{"alive": "false"}, ca["dead"]),
			bundle("plain", "", map[string]string{"alive": "true"}, ca["plain"]))
		rows := map[string]string{}
		for _, line := range strings.Split(k.ok("get", "clustertrustbundles"), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				rows[f[0]] = f[1]
			}
		}
		if rows["NAME"] != "SIGNERNAME" || rows["e2e.example.com:signer:alive1"] != signer || rows["plain"] != "<none>" {
			t.Errorf("kubectl get clustertrustbundles: %v, want the columns NAME SIGNERNAME", rows)
		}
		apply(t, projectionPod("ctb-by-signer", map[string]any{
			"signerName": signer, "labelSelector": map[string]any{"matchLabels": map[string]string{"alive": "true"}},
			"path": "bundle.pem",
		}))
		out := waitSucceeded(t, "ctb-by-signer")
		for _, n := range []string{"alive1", "alive2"} {
			if strings.Count(out, ca[n]) != 1 {
				t.Errorf("the bundle file holds %s's certificate %d times, want once:\n%s", n, strings.Count(out, ca[n]), out)
			}
		}
		for _, n := range []string{"dead", "plain"} {
			if strings.Contains(out, ca[n]) {
				t.Errorf("the bundle file holds %s's certificate, which the selector does not select:\n%s", n, out)
			}
		}
		if strings.Count(out, "-----BEGIN CERTIFICATE-----") != 2 || !strings.HasSuffix(strings.TrimSpace(out), "mode 644") {
			t.Errorf("pod output:\n%s\nwant exactly two certificates and mode 644", out)
		}
	})

	t.Run("a required projection that selects nothing keeps the pod from starting", func(t *testing.T) {
		k.t = t
		apply(t, projectionPod("ctb-required", map[string]any{
			"signerName": signer, "labelSelector": map[string]any{"matchLabels": map[string]string{"alive": "unknown"}},
			"optional": false, "path": "bundle.pem",
		}))
		const want = "combination of signerName and labelSelector matched zero ClusterTrustBundles"
		waitFor(t, "a FailedMount event", 60*time.Second, func() (bool, string) {
			out, _ := k.run("", "get", "events", "--field-selector", "involvedObject.name=ctb-required,reason=FailedMount",
				"-o", "jsonpath={.items[*].message}")
			return strings.Contains(out, want), out
		})
		// Upstream's test: not Running, and not Ready because the
		// container is not.
		state := jsonpath("pod/ctb-required", `{.status.phase} {.status.containerStatuses[0].state.waiting.reason} {.status.conditions[?(@.type=="Ready")].reason} {.status.conditions[?(@.type=="Ready")].message}`)
		if state != "Pending ContainerCreating ContainersNotReady containers with unready status: [c]" {
			t.Errorf("pod state %q, want Pending, waiting in ContainerCreating, not Ready with ContainersNotReady", state)
		}
		// A bundle that matches lets it start: the kubelet retries.
		apply(t, bundle("e2e.example.com:signer:late", signer, map[string]string{"alive": "unknown"}, ca["late"]))
		if out := waitSucceeded(t, "ctb-required"); !strings.Contains(out, ca["late"]) {
			t.Errorf("pod output after the bundle appeared:\n%s\nwant the late certificate", out)
		}
	})

	t.Run("a non-root pod with an fsGroup reads its secret", func(t *testing.T) {
		k.t = t
		k.okIn(`apiVersion: v1
kind: Secret
metadata: {name: fsgroup-secret}
stringData: {data-1: value-1}
---
apiVersion: v1
kind: Pod
metadata: {name: fsgroup-secret}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1001}
  containers:
  - name: c
    image: `+busybox+`
    command: [sh, -c, 'for f in /etc/secret-volume/data-1 /etc/projected-secret-volume/data-1; do echo "$(cat $f) $(stat -L -c "%a %g" $f)"; done; id -u; id -g']
    volumeMounts:
    - {name: secret-volume, mountPath: /etc/secret-volume}
    - {name: projected-secret-volume, mountPath: /etc/projected-secret-volume}
  volumes:
  - name: secret-volume
    secret: {secretName: fsgroup-secret, defaultMode: 0440}
  - name: projected-secret-volume
    projected:
      defaultMode: 0440
      sources:
      - secret: {name: fsgroup-secret}
`, "apply", "-f", "-")
		out := waitSucceeded(t, "fsgroup-secret")
		if want := "value-1 440 1001\nvalue-1 440 1001\n1000\n1000\n"; out != want {
			t.Errorf("pod output %q, want %q: each file readable through the fsGroup, mode 0440, group 1001", out, want)
		}
	})
}

// e2eCAPEM is a self-signed CA certificate named cn, as PEM.
func e2eCAPEM(t *testing.T, cn string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
