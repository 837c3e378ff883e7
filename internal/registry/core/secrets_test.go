package core

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
)

func TestSecretDefault(t *testing.T) {
	s := &corev1.Secret{
		Data:       map[string][]byte{"a": []byte("old"), "b": []byte("keep")},
		StringData: map[string]string{"a": "new", "c": "added"},
	}
	defaultSecret(s)
	want := &corev1.Secret{
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"a": []byte("new"), "b": []byte("keep"), "c": []byte("added")},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("defaulted secret (-want +got):\n%s", diff)
	}
}

func TestSecretValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    corev1.Secret
		want []string
	}{
		{"opaque", corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": nil}}, nil},
		{"bad key", corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a b": nil}}, []string{"data[a b]"}},
		{"too large", corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": make([]byte, 1<<20+1)}}, []string{"data"}},
		{"dockerconfigjson needs its key", corev1.Secret{Type: corev1.SecretTypeDockerConfigJson}, []string{"data[.dockerconfigjson]"}},
		{"dockerconfigjson must be JSON", corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{")}}, []string{"data[.dockerconfigjson]"}},
		{"dockerconfigjson ok", corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}, nil},
		{"sa token needs annotation", corev1.Secret{Type: corev1.SecretTypeServiceAccountToken}, []string{"metadata.annotations[kubernetes.io/service-account.name]"}},
		{"sa token ok", corev1.Secret{Type: corev1.SecretTypeServiceAccountToken, ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/service-account.name": "default"}}}, nil},
		{"tls", corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}}, []string{"data[tls.key]"}},
		{"basic auth", corev1.Secret{Type: corev1.SecretTypeBasicAuth}, []string{"data[username]", "data[password]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validateSecret(&tc.s), tc.want...)
		})
	}
}

func TestSecretUpdate(t *testing.T) {
	old := &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": []byte("v")}, Immutable: ptr.To(true)}
	for _, tc := range []struct {
		name string
		mut  func(*corev1.Secret)
		want []string
	}{
		{"unchanged", func(*corev1.Secret) {}, nil},
		{"type is immutable", func(s *corev1.Secret) { s.Type = "example.com/other" }, []string{"type"}},
		{"data is immutable", func(s *corev1.Secret) { s.Data["k"] = []byte("w") }, []string{"data"}},
		{"immutable stays", func(s *corev1.Secret) { s.Immutable = ptr.To(false) }, []string{"immutable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := old.DeepCopy()
			tc.mut(s)
			metaWantFields(t, validateSecretUpdate(s, old), tc.want...)
		})
	}
}

func TestSecretTableAndFields(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tok", Namespace: "ns"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}}
	r := Secrets()
	if diff := cmp.Diff([]interface{}{"tok", "kubernetes.io/tls", int64(2), "<unknown>"}, r.Table.Row(s)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	want := fields.Set{"metadata.name": "tok", "metadata.namespace": "ns", "type": "kubernetes.io/tls"}
	if diff := cmp.Diff(want, r.Fields(s)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
