package core

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestConfigMapValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cm   corev1.ConfigMap
		want []string
	}{
		{"valid", corev1.ConfigMap{Data: map[string]string{"a.conf": "x"}, BinaryData: map[string][]byte{"b": {1}}}, nil},
		{"bad key", corev1.ConfigMap{Data: map[string]string{"a/b": "x"}}, []string{"data[a/b]"}},
		{"key in both", corev1.ConfigMap{Data: map[string]string{"k": "x"}, BinaryData: map[string][]byte{"k": {1}}}, []string{"data[k]"}},
		{"bad binary key", corev1.ConfigMap{BinaryData: map[string][]byte{"..": {1}}}, []string{"binaryData[..]"}},
		{"too large", corev1.ConfigMap{Data: map[string]string{"a": strings.Repeat("x", 1<<20), "b": "y"}}, []string{"data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metaWantFields(t, validateConfigMap(&tc.cm), tc.want...)
		})
	}
}

func TestConfigMapUpdateImmutable(t *testing.T) {
	old := &corev1.ConfigMap{Data: map[string]string{"a": "1"}, Immutable: ptr.To(true)}
	for _, tc := range []struct {
		name string
		mut  func(*corev1.ConfigMap)
		want []string
	}{
		{"labels may change", func(c *corev1.ConfigMap) { c.Labels = map[string]string{"x": "y"} }, nil},
		{"data may not", func(c *corev1.ConfigMap) { c.Data["a"] = "2" }, []string{"data"}},
		{"immutable may not be unset", func(c *corev1.ConfigMap) { c.Immutable = nil }, []string{"immutable"}},
		{"binaryData may not", func(c *corev1.ConfigMap) { c.BinaryData = map[string][]byte{"b": nil} }, []string{"binaryData"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := old.DeepCopy()
			tc.mut(cm)
			metaWantFields(t, validateConfigMapUpdate(cm, old), tc.want...)
		})
	}
	mutable := &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
	metaWantFields(t, validateConfigMapUpdate(&corev1.ConfigMap{Data: map[string]string{"a": "2"}}, mutable))
}

func TestConfigMapTable(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": nil}}
	got := ConfigMaps().Table.Row(cm)
	if diff := cmp.Diff([]interface{}{"cfg", int64(3), "<unknown>"}, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
