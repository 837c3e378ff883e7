package encryption

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

const validYAML = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: c2VjcmV0IGlzIHNlY3VyZQ==
      - aescbc:
          keys:
            - name: key2
              secret: dGhpcyBpcyBwYXNzd29yZA==
      - secretbox:
          keys:
            - name: key3
              secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=
      - identity: {}
  - resources: ["*.apps"]
    providers:
      - identity: {}
`

func TestParseValid(t *testing.T) {
	c, err := Parse([]byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.For(secrets).Keys(); fmt.Sprint(got) != "[aesgcm:key1 aescbc:key2 secretbox:key3 identity]" {
		t.Fatalf("keys of secrets: %v", got)
	}
	if !s.Encrypts() {
		t.Fatal("Encrypts() = false")
	}
	// JSON is YAML too.
	j := `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"identity":{}}]}]}`
	if _, err := Parse([]byte(j)); err != nil {
		t.Fatalf("JSON: %v", err)
	}
}

// TestParseInvalid: every error names the field at fault, and none shows
// a key's secret.
func TestParseInvalid(t *testing.T) {
	const head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
	const secret32 = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="
	rule := func(resources, providers string) string {
		return head + "resources:\n  - resources: " + resources + "\n    providers:\n" + providers
	}
	box := func(keys string) string { return "      - secretbox:\n          keys:\n" + keys }
	for _, tc := range []struct{ name, yaml, want string }{
		{"kind", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfig\nresources: []\n", `kind: Invalid value: "EncryptionConfig": must be EncryptionConfiguration`},
		{"apiVersion", "apiVersion: v1\nkind: EncryptionConfiguration\n", `apiVersion: Invalid value: "v1"`},
		{"no rules", head, "resources: Required value"},
		{"unknown field", head + "resourcez: []\n", `unknown field "resourcez"`},
		{"no resources in a rule", rule("[]", "      - identity: {}\n"), "resources[0].resources: Required value"},
		{"star", rule(`["*"]`, "      - identity: {}\n"), `resources[0].resources[0]: Invalid value: "*": use '*.'`},
		{"capitals", rule(`[Secrets]`, "      - identity: {}\n"), `resources[0].resources[0]: Invalid value: "Secrets": resource name must not contain capital letters`},
		{"masked", head + "resources:\n  - resources: [\"*.\"]\n    providers: [{identity: {}}]\n  - resources: [secrets]\n    providers: [{identity: {}}]\n",
			`resources[1].resources[0]: Invalid value: "secrets": resource "secrets" is masked by earlier rule "*."`},
		{"no providers", head + "resources:\n  - resources: [secrets]\n", "resources[0].providers: Required value"},
		{"empty provider", rule("[secrets]", "      - {}\n"), "resources[0].providers[0]: Required value: provider does not contain any"},
		{"two providers in one", rule("[secrets]", "      - identity: {}\n        aescbc: {keys: [{name: k, secret: "+secret32+"}]}\n"), "resources[0].providers[0]: Invalid value: \"(several)\": more than one provider"},
		{"kms", rule("[secrets]", "      - kms: {name: x, endpoint: unix:///x}\n"), `resources[0].providers[0].kms: Unsupported value: "kms"`},
		{"no keys", rule("[secrets]", "      - aescbc: {keys: []}\n"), "resources[0].providers[0].aescbc.keys: Required value"},
		{"key without name", rule("[secrets]", box("            - secret: "+secret32+"\n")), "resources[0].providers[0].secretbox.keys[0].name: Required value"},
		{"key without secret", rule("[secrets]", box("            - name: k\n")), "resources[0].providers[0].secretbox.keys[0].secret: Required value"},
		{"secret not base64", rule("[secrets]", box("            - name: k\n              secret: not*base64!\n")), `resources[0].providers[0].secretbox.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded`},
		{"secretbox key too short", rule("[secrets]", box("            - name: k\n              secret: c2VjcmV0IGlzIHNlY3VyZQ==\n")), "resources[0].providers[0].secretbox.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 16, expected one of [32]"},
		{"aescbc key of 20 bytes", rule("[secrets]", "      - aescbc:\n          keys:\n            - name: k\n              secret: MDEyMzQ1Njc4OTAxMjM0NTY3ODk=\n"), "aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 20, expected one of [16 24 32]"},
		{"duplicate key name", rule("[secrets]", box("            - name: k\n              secret: "+secret32+"\n            - name: k\n              secret: "+secret32+"\n")), `resources[0].providers[0].secretbox.keys[1].name: Duplicate value: "k"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("parsed; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n  %v\nwant it to contain:\n  %s", err, tc.want)
			}
			for _, s := range []string{secret32, "c2VjcmV0IGlzIHNlY3VyZQ==", "MDEyMzQ1Njc4OTAxMjM0NTY3ODk=", "not*base64!"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestKeyRedacted: printing or logging a configuration never shows a
// secret.
func TestKeyRedacted(t *testing.T) {
	c, err := Parse([]byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "key", c.Resources[0].Providers[0].AESGCM.Keys[0], "keys", c.Resources[0].Providers[0].AESGCM.Keys)
	out := fmt.Sprintf("%v %+v %#v %s", c.Resources[0].Providers[0].AESGCM, c.Resources[0].Providers[0].AESGCM, *c.Resources[0].Providers[0].AESGCM, c.Resources[0].Providers[0].AESGCM.Keys) + logged.String()
	if strings.Contains(out, "c2VjcmV0IGlzIHNlY3VyZQ==") || !strings.Contains(out, "redacted") {
		t.Fatalf("printed: %s", out)
	}
}

func TestGenerateAndRotate(t *testing.T) {
	for _, provider := range GenerateProviders {
		t.Run(provider, func(t *testing.T) {
			c, err := Generate(provider, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "cred", "encryption-config.yaml")
			if err := WriteFile(path, c); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
				if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
					t.Fatalf("%s: mode %v, %v; want %v", p, fi.Mode(), err, want)
				}
			}
			loaded, err := LoadFile(path)
			if err != nil {
				t.Fatalf("the generated configuration does not load: %v", err)
			}
			s, _ := NewSet(loaded)
			first := s.For(secrets).Active()
			if want := provider + ":key-20250304T050607Z"; first != want {
				t.Fatalf("active key %q, want %q", first, want)
			}
			if got := fmt.Sprint(s.For(secrets).Keys()); got != "["+first+" identity]" {
				t.Fatalf("keys %s", got)
			}

			// The same second: the new key gets another name.
			rotated, name, err := loaded.WithNewKey(fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			if err := rotated.Validate().ToAggregate(); err != nil {
				t.Fatal(err)
			}
			s2, _ := NewSet(rotated)
			if want := "[" + provider + ":" + name + " " + first + " identity]"; fmt.Sprint(s2.For(secrets).Keys()) != want || name == "key-20250304T050607Z" {
				t.Fatalf("after WithNewKey: keys %v, want %s", s2.For(secrets).Keys(), want)
			}
			if fmt.Sprint(s.For(secrets).Keys()) != "["+first+" identity]" {
				t.Fatal("WithNewKey changed its receiver")
			}
			only, dropped, err := rotated.WithActiveKeyOnly()
			if err != nil {
				t.Fatal(err)
			}
			s3, _ := NewSet(only)
			if fmt.Sprint(s3.For(secrets).Keys()) != "["+provider+":"+name+" identity]" || fmt.Sprint(dropped) != "[key-20250304T050607Z]" {
				t.Fatalf("after WithActiveKeyOnly: keys %v, dropped %v", s3.For(secrets).Keys(), dropped)
			}
		})
	}
}

func TestRotateRefusesOtherConfigurations(t *testing.T) {
	c, err := Parse([]byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WithNewKey(fixedNow); err == nil || !strings.Contains(err.Error(), "one rule, for secrets alone") {
		t.Fatalf("err = %v", err)
	}
	id := &Configuration{Kind: Kind, APIVersion: APIVersion, Resources: []ResourceConfiguration{{Resources: []string{"secrets"}, Providers: []ProviderConfiguration{identityProvider()}}}}
	if _, _, err := id.WithNewKey(fixedNow); err == nil || !strings.Contains(err.Error(), "first provider is identity") {
		t.Fatalf("err = %v", err)
	}
}
