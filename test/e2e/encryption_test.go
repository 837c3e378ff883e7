package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/internal/storage/encryption"
	"github.com/skiff-io/skiff/test/framework"
)

// TestSecretsEncryption (issue 13): with --secrets-encryption a Secret's
// value is nowhere in the data dir — etcd's WAL, snapshots and database,
// the logs — neither plain nor base64; rotate-keys changes the key
// without a restart while reads and watches see the plain value; and the
// same steps without encryption do find the value, so the search can
// fail.
//
// Every Secret is created after encryption is on: one created before
// would stay plain in etcd's older revisions until they are compacted
// (as upstream's would).
func TestSecretsEncryption(t *testing.T) {
	t.Run("encrypted", func(t *testing.T) {
		c := framework.StartBinary(t, skiffBin, "--secrets-encryption")
		k := kubectl{t: t, c: c}
		value := uniqueValue(t)
		k.ok("create", "secret", "generic", "enc", "--from-literal=v="+value)
		if got := secretValue(k, "enc"); got != value {
			t.Fatalf("read back %q, want %q", got, value)
		}
		assertNotInDataDir(t, c, value)

		before := secretsEncrypt(t, c, "status")
		if !before.Enabled || !before.AllUnderActiveKey || before.Secrets < 1 || !strings.HasPrefix(before.ActiveKey, "secretbox:") {
			t.Fatalf("status before rotation: %+v", before)
		}
		keysBefore := configSecrets(t, c)

		// A watch opened before the rotation sees the rewrite, plain.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sec, err := c.Client.CoreV1().Secrets("default").Get(ctx, "enc", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := c.Client.CoreV1().Secrets("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=enc", ResourceVersion: sec.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()

		rotated := secretsEncrypt(t, c, "rotate-keys")
		if rotated.NewKey == "" || rotated.NewKey == before.ActiveKey || rotated.ActiveKey != rotated.NewKey ||
			!rotated.AllUnderActiveKey || rotated.Rewritten < 1 || len(rotated.DroppedKeys) != 1 ||
			"secretbox:"+rotated.DroppedKeys[0] != before.ActiveKey {
			t.Fatalf("rotate-keys answered %+v (active key before: %s)", rotated, before.ActiveKey)
		}
		select {
		case ev := <-w.ResultChan():
			s, ok := ev.Object.(*corev1.Secret)
			if ev.Type != watch.Modified || !ok || string(s.Data["v"]) != value {
				t.Fatalf("watch event during rotation: %s %+v", ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatal("no watch event for the rewrite")
		}
		if got := secretValue(k, "enc"); got != value {
			t.Fatalf("after rotation read back %q, want %q", got, value)
		}
		after := secretsEncrypt(t, c, "status")
		if after.ActiveKey != rotated.NewKey || !after.AllUnderActiveKey || len(after.Keys) != 2 || after.Keys[1] != encryption.Identity {
			t.Fatalf("status after rotation: %+v", after)
		}
		if keys := configSecrets(t, c); len(keys) != 1 || keys[0] == keysBefore[0] {
			t.Fatalf("the configuration holds %d keys after rotation, want the new one alone", len(keys))
		}
		assertNotInDataDir(t, c, value)
		// The keys themselves never reach the log.
		log := c.ServerLog()
		for _, key := range append(keysBefore, configSecrets(t, c)...) {
			if strings.Contains(log, key) {
				t.Fatal("the server log holds an encryption key")
			}
		}

		// The rotated configuration is what a restart loads.
		c.Restart(t)
		if got := secretValue(k, "enc"); got != value {
			t.Fatalf("after a restart read back %q, want %q", got, value)
		}
	})

	// The guard: without encryption the same search finds the value, so
	// the searches above can fail.
	t.Run("plain", func(t *testing.T) {
		c := framework.StartBinary(t, skiffBin)
		k := kubectl{t: t, c: c}
		value := uniqueValue(t)
		k.ok("create", "secret", "generic", "plain", "--from-literal=v="+value)
		if files := filesHolding(t, c.DataDir, []byte(value)); len(files) == 0 {
			t.Fatalf("the plain value is nowhere in the data dir of a server without encryption: the search is broken")
		} else {
			t.Logf("without encryption the value is in %s", strings.Join(files, ", "))
		}
		st := secretsEncrypt(t, c, "status")
		if st.Enabled || st.ActiveKey != encryption.Identity || st.AllUnderActiveKey != true {
			t.Fatalf("status without encryption: %+v", st)
		}
	})
}

func uniqueValue(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "skiff-e2e-secret-" + hex.EncodeToString(b)
}

func secretValue(k kubectl, name string) string {
	b, err := base64.StdEncoding.DecodeString(k.jsonpath("secret/"+name, "{.data.v}"))
	if err != nil {
		k.t.Fatalf("secret %s: %v", name, err)
	}
	return string(b)
}

// assertNotInDataDir searches every file of the data dir (etcd's WAL,
// snapshots and bbolt database included, the server log too) for the
// value and its base64.
func assertNotInDataDir(t *testing.T, c *framework.Cluster, value string) {
	t.Helper()
	for _, needle := range []string{value, base64.StdEncoding.EncodeToString([]byte(value))} {
		if files := filesHolding(t, c.DataDir, []byte(needle)); len(files) > 0 {
			t.Fatalf("%q is stored in the clear in %s", needle, strings.Join(files, ", "))
		}
	}
}

func filesHolding(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			rel, _ := filepath.Rel(dir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("searching %s: %v", dir, err)
	}
	return found
}

// secretsEncrypt runs `skiff secrets-encrypt <verb> -o json`.
func secretsEncrypt(t *testing.T, c *framework.Cluster, verb string) server.EncryptionStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, skiffBin, "secrets-encrypt", verb, "--data-dir", c.DataDir, "-o", "json").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("skiff secrets-encrypt %s: %v\n%s%s\nserver log:\n%s", verb, err, out, stderr, tail(c.ServerLog(), 30))
	}
	var st server.EncryptionStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("skiff secrets-encrypt %s printed %s: %v", verb, out, err)
	}
	return st
}

// configSecrets returns the key material of the generated configuration.
func configSecrets(t *testing.T, c *framework.Cluster) []string {
	t.Helper()
	cfg, err := encryption.LoadFile(filepath.Join(c.DataDir, "cred", "encryption-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rc := range cfg.Resources {
		for _, p := range rc.Providers {
			for _, kc := range []*encryption.KeysConfiguration{p.AESCBC, p.AESGCM, p.Secretbox} {
				if kc != nil {
					for _, k := range kc.Keys {
						out = append(out, k.Secret)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("the generated configuration holds no key")
	}
	return out
}
