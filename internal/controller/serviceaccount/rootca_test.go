package serviceaccount

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRootCACurrent(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name string
		cm   *corev1.ConfigMap
		want bool
	}{
		{"nil", nil, false},
		{"same", &corev1.ConfigMap{Data: map[string]string{"ca.crt": string(ca)}}, true},
		{"different", &corev1.ConfigMap{Data: map[string]string{"ca.crt": "other"}}, false},
		{"extra key", &corev1.ConfigMap{Data: map[string]string{"ca.crt": string(ca), "x": "y"}}, false},
		{"binary data", &corev1.ConfigMap{Data: map[string]string{"ca.crt": string(ca)}, BinaryData: map[string][]byte{"b": nil}}, false},
		{"empty", &corev1.ConfigMap{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rootCACurrent(tt.cm, ca); got != tt.want {
				t.Errorf("rootCACurrent = %v, want %v", got, tt.want)
			}
		})
	}
}
