package prober

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolvePort(t *testing.T) {
	c := &v1.Container{Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "bad", ContainerPort: 0}}}
	tests := []struct {
		port    intstr.IntOrString
		want    int
		wantErr string
	}{
		{port: intstr.FromInt32(80), want: 80},
		{port: intstr.FromString("http"), want: 8080},
		{port: intstr.FromString("9090"), want: 9090},
		{port: intstr.FromString("nope"), want: -1, wantErr: "port nope not found"},
		{port: intstr.FromInt32(0), want: 0, wantErr: "invalid port number: 0"},
		{port: intstr.FromInt32(70000), want: 70000, wantErr: "invalid port number: 70000"},
		{port: intstr.FromString("bad"), want: 0, wantErr: "invalid port number: 0"},
	}
	for _, tt := range tests {
		got, err := resolvePort(tt.port, c)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("resolvePort(%v) = (%d, %q), want (%d, %q)", tt.port.String(), got, gotErr, tt.want, tt.wantErr)
		}
	}
}
