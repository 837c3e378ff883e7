package bootstraptoken

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

var testToken = Token{ID: "abcdef", Secret: "0123456789abcdef"}

func TestSpecSecretRoundTrip(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		spec Spec
		data map[string]string
	}{{
		name: "full",
		spec: Spec{Token: testToken, Description: "for node-1", Expires: exp,
			Usages:      []string{UsageAuthentication, UsageSigning},
			ExtraGroups: []string{"system:bootstrappers:workers", "system:bootstrappers:kubeadm:default-node-token"}},
		data: map[string]string{
			"token-id": "abcdef", "token-secret": "0123456789abcdef", "description": "for node-1",
			"expiration":                     "2030-01-02T02:04:05Z",
			"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
			"auth-extra-groups": "system:bootstrappers:workers,system:bootstrappers:kubeadm:default-node-token",
		},
	}, {
		name: "never expires",
		spec: Spec{Token: testToken, Usages: []string{UsageAuthentication}},
		data: map[string]string{"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := tt.spec.Secret()
			if sec.Name != "bootstrap-token-abcdef" || sec.Namespace != "kube-system" || sec.Type != "bootstrap.kubernetes.io/token" {
				t.Errorf("secret %s/%s of type %s", sec.Namespace, sec.Name, sec.Type)
			}
			data := map[string]string{}
			for k, v := range sec.Data {
				data[k] = string(v)
			}
			if d := cmp.Diff(tt.data, data); d != "" {
				t.Errorf("data (-want +got):\n%s", d)
			}
			got, err := FromSecret(sec)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Expires.Equal(tt.spec.Expires) {
				t.Errorf("Expires = %v, want %v", got.Expires, tt.spec.Expires)
			}
			got.Expires = tt.spec.Expires
			if d := cmp.Diff(tt.spec, got); d != "" {
				t.Errorf("FromSecret (-want +got):\n%s", d)
			}
		})
	}
}

func TestFromSecretRefuses(t *testing.T) {
	good := func() *corev1.Secret {
		return Spec{Token: testToken, Usages: []string{UsageAuthentication}}.Secret()
	}
	tests := []struct {
		name   string
		change func(*corev1.Secret)
		want   string
	}{
		{"other type", func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }, "not a bootstrap token Secret"},
		{"other namespace", func(s *corev1.Secret) { s.Namespace = "default" }, "not a bootstrap token Secret"},
		{"id does not match the name", func(s *corev1.Secret) { s.Data[KeyID] = []byte("zzzzzz") }, "does not match the name"},
		{"no id", func(s *corev1.Secret) { delete(s.Data, KeyID) }, "does not match the name"},
		{"short secret", func(s *corev1.Secret) { s.Data[KeySecret] = []byte("0123") }, "token-secret is not"},
		{"bad expiration", func(s *corev1.Secret) { s.Data[KeyExpiration] = []byte("tomorrow") }, "not an RFC3339 time"},
		{"group outside system:bootstrappers:", func(s *corev1.Secret) { s.Data[KeyExtraGroups] = []byte("system:masters") }, `"system:masters"`},
		{"empty group in the list", func(s *corev1.Secret) { s.Data[KeyExtraGroups] = []byte("system:bootstrappers:a,") }, `""`},
		{"bare system:bootstrappers:", func(s *corev1.Secret) { s.Data[KeyExtraGroups] = []byte("system:bootstrappers:") }, "want system:bootstrappers:<name>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.change(s)
			_, err := FromSecret(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromSecret: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken.Secret) {
				t.Errorf("the error quotes the token's secret: %v", err)
			}
		})
	}
	s := good()
	s.Type = corev1.SecretTypeOpaque
	if _, err := FromSecret(s); !errors.Is(err, ErrNotToken) {
		t.Errorf("an Opaque Secret: %v, want ErrNotToken", err)
	}
}

func TestSpecExpiredUsagesGroups(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		expires time.Time
		want    bool
	}{
		{time.Time{}, false},
		{now.Add(time.Second), false},
		{now, true},
		{now.Add(-time.Second), true},
	} {
		if got := (Spec{Expires: tt.expires}).Expired(now); got != tt.want {
			t.Errorf("Expires %v: Expired(%v) = %v, want %v", tt.expires, now, got, tt.want)
		}
	}
	// A usage counts only when its value is "true", as upstream.
	s := Spec{Token: testToken}.Secret()
	s.Data[UsagePrefix+UsageAuthentication] = []byte("false")
	s.Data[UsagePrefix+UsageSigning] = []byte("true")
	spec, err := FromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if spec.HasUsage(UsageAuthentication) || !spec.HasUsage(UsageSigning) {
		t.Errorf("usages %v: want signing only", spec.Usages)
	}
	spec.ExtraGroups = []string{"system:bootstrappers:b", "system:bootstrappers:a", "system:bootstrappers:b"}
	if d := cmp.Diff([]string{"system:bootstrappers", "system:bootstrappers:a", "system:bootstrappers:b"}, spec.Groups()); d != "" {
		t.Errorf("Groups (-want +got):\n%s", d)
	}
}

func TestValidateGroup(t *testing.T) {
	for g, ok := range map[string]bool{
		"system:bootstrappers:kubeadm:default-node-token":  true,
		"system:bootstrappers:a":                           true,
		"system:bootstrappers:":                            false,
		"system:bootstrappers":                             false,
		"system:bootstrappers:Workers":                     false,
		"system:bootstrappers:workers-":                    false,
		"system:nodes":                                     false,
		"system:bootstrappers:" + strings.Repeat("a", 257): false,
	} {
		if err := ValidateGroup(g); (err == nil) != ok {
			t.Errorf("ValidateGroup(%q) = %v, want ok %v", g, err, ok)
		}
	}
}
