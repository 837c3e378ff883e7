package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var secrets = schema.GroupResource{Resource: "secrets"}

// plain looks like a stored protobuf value, as the codec hands it over.
var plain = []byte("k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12 the-plain-secret-value-0123456789")

// seeded is a deterministic randomness source, so that a test on a
// random IV or nonce gives the same answer on every run.
func seeded() *rand.ChaCha8 { return rand.NewChaCha8([32]byte{1, 2, 3}) }

func b64(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, n))
}

func keysOf(provider string, keys ...Key) ProviderConfiguration {
	kc := &KeysConfiguration{Keys: keys}
	switch provider {
	case AESCBC:
		return ProviderConfiguration{AESCBC: kc}
	case AESGCM:
		return ProviderConfiguration{AESGCM: kc}
	case Secretbox:
		return ProviderConfiguration{Secretbox: kc}
	}
	return ProviderConfiguration{Identity: &struct{}{}}
}

func identityProvider() ProviderConfiguration { return ProviderConfiguration{Identity: &struct{}{}} }

// listOf builds the transformer of "secrets" under providers.
func listOf(t *testing.T, providers ...ProviderConfiguration) *List {
	t.Helper()
	c := &Configuration{Kind: Kind, APIVersion: APIVersion, Resources: []ResourceConfiguration{{Resources: []string{"secrets"}, Providers: providers}}}
	if err := c.Validate().ToAggregate(); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	s, err := newSet(c, seeded())
	if err != nil {
		t.Fatal(err)
	}
	return s.For(secrets)
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		provider string
		keyLen   int
		overhead func(n int) int // payload length for a value of n bytes
	}{
		{AESCBC, 16, func(n int) int { return 16 + (n/16+1)*16 }},
		{AESCBC, 24, func(n int) int { return 16 + (n/16+1)*16 }},
		{AESCBC, 32, func(n int) int { return 16 + (n/16+1)*16 }},
		{AESGCM, 16, func(n int) int { return 12 + n + 16 }},
		{AESGCM, 32, func(n int) int { return 12 + n + 16 }},
		{Secretbox, 32, func(n int) int { return 24 + n + 16 }},
	} {
		t.Run(tc.provider+"/"+string(rune('0'+tc.keyLen/8)), func(t *testing.T) {
			l := listOf(t, keysOf(tc.provider, Key{Name: "key1", Secret: b64(tc.keyLen, 7)}))
			for _, value := range [][]byte{plain, {}, bytes.Repeat([]byte{'x'}, 16), bytes.Repeat([]byte{'y'}, 1000)} {
				stored, err := l.TransformToStorage(value)
				if err != nil {
					t.Fatal(err)
				}
				prefix := "k8s:enc:" + tc.provider + ":v1:key1:"
				if !bytes.HasPrefix(stored, []byte(prefix)) {
					t.Fatalf("stored value starts %q, want prefix %q", stored[:min(len(stored), 40)], prefix)
				}
				if got, want := len(stored)-len(prefix), tc.overhead(len(value)); got != want {
					t.Errorf("payload of a %d-byte value is %d bytes, want %d", len(value), got, want)
				}
				if len(value) >= 8 && bytes.Contains(stored, value[len(value)-8:]) {
					t.Errorf("stored value holds the plain text")
				}
				again, _ := l.TransformToStorage(value)
				if bytes.Equal(again, stored) {
					t.Errorf("two encryptions of one value are equal: the IV or nonce is not random")
				}
				got, stale, err := l.TransformFromStorage(stored)
				if err != nil {
					t.Fatal(err)
				}
				if stale || !bytes.Equal(got, value) {
					t.Fatalf("read back %q (stale %v), want %q (not stale)", got, stale, value)
				}
			}
			if l.Active() != tc.provider+":key1" {
				t.Errorf("Active() = %q", l.Active())
			}
		})
	}
	t.Run("identity", func(t *testing.T) {
		l := listOf(t, identityProvider())
		stored, err := l.TransformToStorage(plain)
		if err != nil || !bytes.Equal(stored, plain) {
			t.Fatalf("identity stored %q, %v; want the value as it is", stored, err)
		}
		got, stale, err := l.TransformFromStorage(stored)
		if err != nil || stale || !bytes.Equal(got, plain) {
			t.Fatalf("identity read %q, %v, %v", got, stale, err)
		}
	})
}

// TestWrongKeyFails: a value read with another secret under the same key
// name, or tampered with, fails with an error that says so and nothing
// more, for every provider.
func TestWrongKeyFails(t *testing.T) {
	for _, provider := range []string{AESCBC, AESGCM, Secretbox} {
		t.Run(provider, func(t *testing.T) {
			good := listOf(t, keysOf(provider, Key{Name: "key1", Secret: b64(32, 1)}))
			bad := listOf(t, keysOf(provider, Key{Name: "key1", Secret: b64(32, 2)}))
			for _, value := range [][]byte{plain, bytes.Repeat([]byte{'z'}, 100)} {
				stored, err := good.TransformToStorage(value)
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := bad.TransformFromStorage(stored)
				if !errors.Is(err, errDecrypt) {
					t.Fatalf("read with the wrong key: %q, %v; want errDecrypt", got, err)
				}
				if !strings.Contains(err.Error(), provider+":key1") {
					t.Errorf("error %q does not name the key", err)
				}
				if provider == AESCBC {
					continue // CBC is not authenticated: a flipped bit goes unseen
				}
				tampered := bytes.Clone(stored)
				tampered[len(tampered)-1] ^= 1
				if _, _, err := good.TransformFromStorage(tampered); !errors.Is(err, errDecrypt) {
					t.Fatalf("tampered value: %v; want errDecrypt", err)
				}
				if _, _, err := good.TransformFromStorage(stored[:len("k8s:enc:"+provider+":v1:key1:")+3]); !errors.Is(err, errDecrypt) {
					t.Fatalf("truncated value: %v; want errDecrypt", err)
				}
			}
		})
	}
}

// TestReadOrder covers what the list reads and what it calls stale.
func TestReadOrder(t *testing.T) {
	k1 := Key{Name: "key1", Secret: b64(32, 1)}
	k2 := Key{Name: "key2", Secret: b64(32, 2)}
	underK1, _ := listOf(t, keysOf(Secretbox, k1)).TransformToStorage(plain)
	underK2, _ := listOf(t, keysOf(Secretbox, k2)).TransformToStorage(plain)
	underCBC, _ := listOf(t, keysOf(AESCBC, k1)).TransformToStorage(plain)

	for _, tc := range []struct {
		name      string
		providers []ProviderConfiguration
		stored    []byte
		stale     bool
		err       string // "" when the read succeeds
	}{
		{"identity-written value with an encrypting provider first", []ProviderConfiguration{keysOf(AESCBC, k1), identityProvider()}, plain, true, ""},
		{"identity-written value without identity", []ProviderConfiguration{keysOf(AESCBC, k1)}, plain, false, "no identity provider"},
		{"first key", []ProviderConfiguration{keysOf(Secretbox, k2, k1)}, underK2, false, ""},
		{"second key", []ProviderConfiguration{keysOf(Secretbox, k2, k1)}, underK1, true, ""},
		{"second provider", []ProviderConfiguration{keysOf(Secretbox, k2), keysOf(AESCBC, k1)}, underCBC, true, ""},
		{"encrypted value with identity first", []ProviderConfiguration{identityProvider(), keysOf(AESCBC, k1)}, underCBC, true, ""},
		{"encrypted value with identity alone", []ProviderConfiguration{identityProvider()}, underCBC, false, "aescbc:key1, which the encryption configuration does not hold"},
		{"key the configuration dropped", []ProviderConfiguration{keysOf(Secretbox, k2)}, underK1, false, "secretbox:key1, which the encryption configuration does not hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stale, err := listOf(t, tc.providers...).TransformFromStorage(tc.stored)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) || stale != tc.stale {
				t.Fatalf("read %q, stale %v; want the plain value, stale %v", got, stale, tc.stale)
			}
		})
	}
}

// TestUpstreamLayout reads values laid out by hand as upstream's aescbc
// and secretbox write them, so that the layout stays upstream's.
func TestUpstreamLayout(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, 32)
	k := Key{Name: "k", Secret: base64.StdEncoding.EncodeToString(secret)}

	block, _ := aes.NewCipher(secret)
	iv := bytes.Repeat([]byte{3}, 16)
	pad := 16 - len(plain)%16
	body := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
	cbc := append(append([]byte("k8s:enc:aescbc:v1:k:"), iv...), body...)

	var key [32]byte
	copy(key[:], secret)
	nonce := [24]byte{5}
	box := secretbox.Seal(append([]byte("k8s:enc:secretbox:v1:k:"), nonce[:]...), plain, &nonce, &key)

	for provider, stored := range map[string][]byte{AESCBC: cbc, Secretbox: box} {
		got, _, err := listOf(t, keysOf(provider, k)).TransformFromStorage(stored)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: read %q, %v; want the plain value", provider, got, err)
		}
	}
}

func TestDynamicFollowsStore(t *testing.T) {
	c1 := &Configuration{Kind: Kind, APIVersion: APIVersion, Resources: []ResourceConfiguration{{Resources: []string{"secrets"}, Providers: []ProviderConfiguration{keysOf(Secretbox, Key{Name: "key1", Secret: b64(32, 1)})}}}}
	c2, name, err := c1.WithNewKey(fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := NewSet(c1)
	s2, _ := NewSet(c2)
	d := NewDynamic(s1)
	tr := d.For(secrets)
	before, _ := tr.TransformToStorage(plain)
	d.Store(s2)
	after, _ := tr.TransformToStorage(plain)
	if !bytes.HasPrefix(before, []byte("k8s:enc:secretbox:v1:key1:")) || !bytes.HasPrefix(after, []byte("k8s:enc:secretbox:v1:"+name+":")) {
		t.Fatalf("before the swap %q, after %q", before[:30], after[:30])
	}
	if _, stale, err := tr.TransformFromStorage(before); err != nil || !stale {
		t.Fatalf("old value after the swap: stale %v, %v; want stale", stale, err)
	}
	// A resource no rule covers is stored as it is.
	pods := d.For(schema.GroupResource{Resource: "pods"})
	if out, _ := pods.TransformToStorage(plain); !bytes.Equal(out, plain) {
		t.Fatalf("pods stored as %q", out)
	}
}

func TestForWildcards(t *testing.T) {
	k := func(n string) Key { return Key{Name: n, Secret: b64(32, 1)} }
	c := &Configuration{Kind: Kind, APIVersion: APIVersion, Resources: []ResourceConfiguration{
		{Resources: []string{"secrets"}, Providers: []ProviderConfiguration{keysOf(Secretbox, k("exact"))}},
		{Resources: []string{"*.apps"}, Providers: []ProviderConfiguration{keysOf(Secretbox, k("apps"))}},
		{Resources: []string{"*."}, Providers: []ProviderConfiguration{keysOf(Secretbox, k("core"))}},
		{Resources: []string{"*.*"}, Providers: []ProviderConfiguration{keysOf(Secretbox, k("all"))}},
	}}
	if err := c.Validate().ToAggregate(); err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	for gr, want := range map[schema.GroupResource]string{
		{Resource: "secrets"}:                                   "secretbox:exact",
		{Group: "apps", Resource: "deployments"}:                "secretbox:apps",
		{Resource: "configmaps"}:                                "secretbox:core",
		{Group: "batch", Resource: "jobs"}:                      "secretbox:all",
		{Group: "rbac.authorization.k8s.io", Resource: "roles"}: "secretbox:all",
	} {
		if got := s.For(gr).Active(); got != want {
			t.Errorf("%v: active key %q, want %q", gr, got, want)
		}
	}
}

// BenchmarkTransform is the cost of one provider alone on a 1 KiB value.
func BenchmarkTransform(b *testing.B) {
	value := bytes.Repeat([]byte{'x'}, 1024)
	for _, provider := range []string{AESCBC, AESGCM, Secretbox, Identity} {
		c := &Configuration{Kind: Kind, APIVersion: APIVersion, Resources: []ResourceConfiguration{{Resources: []string{"secrets"}, Providers: []ProviderConfiguration{keysOf(provider, Key{Name: "k", Secret: b64(32, 1)})}}}}
		s, err := NewSet(c)
		if err != nil {
			b.Fatal(err)
		}
		l := s.For(secrets)
		stored, _ := l.TransformToStorage(value)
		b.Run("seal/"+provider, func(b *testing.B) {
			b.SetBytes(int64(len(value)))
			for i := 0; i < b.N; i++ {
				if _, err := l.TransformToStorage(value); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("open/"+provider, func(b *testing.B) {
			b.SetBytes(int64(len(value)))
			for i := 0; i < b.N; i++ {
				if _, _, err := l.TransformFromStorage(stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
