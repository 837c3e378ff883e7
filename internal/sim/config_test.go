package sim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestParseTaint(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    corev1.Taint
		wantErr bool
	}{
		{in: "dedicated=gpu:NoSchedule", want: corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}},
		{in: "example.com/spot:PreferNoSchedule", want: corev1.Taint{Key: "example.com/spot", Effect: corev1.TaintEffectPreferNoSchedule}},
		{in: "k=:NoExecute", want: corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute}},
		{in: "k=v", wantErr: true},
		{in: "k=v:Sometimes", wantErr: true},
		{in: ":NoSchedule", wantErr: true},
		{in: "bad key=v:NoSchedule", wantErr: true},
		{in: "k=bad value:NoSchedule", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := ParseTaint(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseTaint(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseTaint(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr bool
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "bad cpu", mod: func(c *Config) { c.CPU = "lots" }, wantErr: true},
		{name: "negative memory", mod: func(c *Config) { c.Memory = "-1Gi" }, wantErr: true},
		{name: "bad prefix", mod: func(c *Config) { c.NamePrefix = "Sim_" }, wantErr: true},
		{name: "bad label", mod: func(c *Config) { c.Labels = map[string]string{"a b": "c"} }, wantErr: true},
		{name: "bad taint", mod: func(c *Config) { c.Taints = []corev1.Taint{{Key: "k", Effect: "Never"}} }, wantErr: true},
		{name: "negative nodes", mod: func(c *Config) { c.Nodes = -1 }, wantErr: true},
		{name: "kubelet endpoint off", mod: func(c *Config) { c.KubeletPort = -1 }},
		{name: "kubelet port too large", mod: func(c *Config) { c.KubeletPort = 70000 }, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.mod(&c)
			if err := c.withDefaults().validate(); (err != nil) != tc.wantErr {
				t.Errorf("validate() = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}
