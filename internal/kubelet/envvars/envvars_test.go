package envvars

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeSources serves objects keyed "ns/name" and counts GETs.
type fakeSources struct {
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	gets       int
}

func (f *fakeSources) ConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	f.gets++
	if cm, ok := f.configMaps[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (f *fakeSources) Secret(_ context.Context, ns, name string) (*v1.Secret, error) {
	f.gets++
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (f *fakeSources) Token(context.Context, string, string, *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	return nil, errors.New("not used")
}

func newSources() *fakeSources {
	return &fakeSources{
		configMaps: map[string]*v1.ConfigMap{
			"ns/cfg":  {Data: map[string]string{"HOST": "db", "PORT": "5432", "bad=key": "x"}},
			"ns/data": {Data: map[string]string{"data-1": "value-1", "data-2": "value-2"}},
		},
		secrets: map[string]*v1.Secret{
			"ns/sec": {Data: map[string][]byte{"PASSWORD": []byte("s3cret"), "HOST": []byte("from-secret")}},
		},
	}
}

func pairs(kvs []*runtimeapi.KeyValue) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

func basePod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"owner": "team-a"},
		},
		Spec: v1.PodSpec{NodeName: "node-1", ServiceAccountName: "runner"},
	}
}

func fieldEnv(name, path string) v1.EnvVar {
	return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
}

func resourceEnv(name, res, divisor string) v1.EnvVar {
	fs := &v1.ResourceFieldSelector{Resource: res}
	if divisor != "" {
		fs.Divisor = resource.MustParse(divisor)
	}
	return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{ResourceFieldRef: fs}}
}

func cmKey(name, cm, key string, optional bool) v1.EnvVar {
	return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
		LocalObjectReference: v1.LocalObjectReference{Name: cm}, Key: key, Optional: &optional}}}
}

func secretKey(name, s, key string, optional bool) v1.EnvVar {
	return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
		LocalObjectReference: v1.LocalObjectReference{Name: s}, Key: key, Optional: &optional}}}
}

func TestResolve(t *testing.T) {
	in := Inputs{
		PodIPs:          []string{"10.0.0.5", "fd00::5"},
		HostIPs:         []string{"192.168.1.10", "fd01::10"},
		NodeAllocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")},
	}
	f := false
	tests := []struct {
		name      string
		c         v1.Container
		pod       func(*v1.Pod)
		in        *Inputs
		want      []string
		wantErr   string
		wantNotFd bool
	}{{
		name: "plain values and expansion over earlier vars",
		c: v1.Container{Env: []v1.EnvVar{
			{Name: "A", Value: "a"},
			{Name: "B", Value: "$(A)-b"},
			{Name: "ESCAPED", Value: "$$(A)"},
			{Name: "UNDEF", Value: "$(LATER) $(NOPE)"},
			{Name: "LATER", Value: "late"},
			{Name: "EMPTY"},
		}},
		want: []string{"A=a", "B=a-b", "ESCAPED=$(A)", "UNDEF=$(LATER) $(NOPE)", "LATER=late", "EMPTY="},
	}, {
		name: "envFrom with prefix, secret, invalid key skipped, env overrides in place",
		c: v1.Container{
			EnvFrom: []v1.EnvFromSource{
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}, Prefix: "DB_"},
				{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
			},
			Env: []v1.EnvVar{
				{Name: "DB_PORT", Value: "6543"},
				{Name: "URL", Value: "pg://$(DB_HOST):$(DB_PORT)"},
			},
		},
		want: []string{"DB_HOST=db", "DB_PORT=6543", "HOST=from-secret", "PASSWORD=s3cret", "URL=pg://db:6543"},
	}, {
		// Upstream's conformance tests "should be consumable as environment
		// variable names with various prefixes": any printable name without
		// '=' is passed on.
		name: "envFrom keys and prefixes that are not shell names",
		c: v1.Container{
			EnvFrom: []v1.EnvFromSource{
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "data"}}},
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "data"}}, Prefix: "1-"},
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "data"}}, Prefix: "$_-"},
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "data"}}, Prefix: "#@!"},
			},
			Env: []v1.EnvVar{{Name: "CONFIG_DATA_1", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "data"}, Key: "data-1"}}}},
		},
		want: []string{"data-1=value-1", "data-2=value-2", "1-data-1=value-1", "1-data-2=value-2",
			"$_-data-1=value-1", "$_-data-2=value-2", "#@!data-1=value-1", "#@!data-2=value-2", "CONFIG_DATA_1=value-1"},
	}, {
		name: "fieldRef",
		c: v1.Container{Env: []v1.EnvVar{
			fieldEnv("NAME", "metadata.name"),
			fieldEnv("NS", "metadata.namespace"),
			fieldEnv("UID", "metadata.uid"),
			fieldEnv("APP", "metadata.labels['app']"),
			fieldEnv("MISSING_LABEL", "metadata.labels['nope']"),
			fieldEnv("OWNER", "metadata.annotations['owner']"),
			fieldEnv("NODE", "spec.nodeName"),
			fieldEnv("SA", "spec.serviceAccountName"),
			fieldEnv("POD_IP", "status.podIP"),
			fieldEnv("POD_IPS", "status.podIPs"),
			fieldEnv("HOST_IP", "status.hostIP"),
			fieldEnv("HOST_IPS", "status.hostIPs"),
			{Name: "HOST_URL", Value: "http://$(HOST_IP):10250"},
		}},
		want: []string{
			"NAME=web", "NS=ns", "UID=uid-1", "APP=web", "MISSING_LABEL=", "OWNER=team-a", "NODE=node-1", "SA=runner",
			"POD_IP=10.0.0.5", "POD_IPS=10.0.0.5,fd00::5", "HOST_IP=192.168.1.10", "HOST_IPS=192.168.1.10,fd01::10",
			"HOST_URL=http://192.168.1.10:10250",
		},
	}, {
		name: "spec.nodeName falls back to the node's name",
		pod:  func(p *v1.Pod) { p.Spec.NodeName = "" },
		in:   &Inputs{NodeName: "node-9"},
		c:    v1.Container{Env: []v1.EnvVar{fieldEnv("NODE", "spec.nodeName")}},
		want: []string{"NODE=node-9"},
	}, {
		name:    "hostIP unknown",
		in:      &Inputs{},
		c:       v1.Container{Env: []v1.EnvVar{fieldEnv("HOST_IP", "status.hostIP")}},
		wantErr: "status.hostIP: the node's IPs are not known yet",
	}, {
		name:    "unsupported field",
		c:       v1.Container{Env: []v1.EnvVar{fieldEnv("X", "spec.containers")}},
		wantErr: "field label not supported: spec.containers",
	}, {
		name:    "subscript on a field without one",
		c:       v1.Container{Env: []v1.EnvVar{fieldEnv("X", "metadata.name['x']")}},
		wantErr: "field label does not support subscript: metadata.name['x']",
	}, {
		name: "resourceFieldRef with divisor and node allocatable defaults",
		c: v1.Container{
			Resources: v1.ResourceRequirements{
				Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("256Mi")},
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("100Mi")},
			},
			Env: []v1.EnvVar{
				resourceEnv("CPU_LIMIT", "limits.cpu", ""),
				resourceEnv("CPU_LIMIT_M", "limits.cpu", "1m"),
				resourceEnv("CPU_REQUEST", "requests.cpu", ""),
				resourceEnv("CPU_REQUEST_M", "requests.cpu", "1m"),
				resourceEnv("MEM_LIMIT", "limits.memory", ""),
				resourceEnv("MEM_LIMIT_MI", "limits.memory", "1Mi"),
				resourceEnv("MEM_REQUEST_GI", "requests.memory", "1Gi"),
			},
		},
		want: []string{
			"CPU_LIMIT=4", "CPU_LIMIT_M=4000", "CPU_REQUEST=1", "CPU_REQUEST_M=250",
			"MEM_LIMIT=268435456", "MEM_LIMIT_MI=256", "MEM_REQUEST_GI=1",
		},
	}, {
		name:    "unsupported resource",
		c:       v1.Container{Env: []v1.EnvVar{resourceEnv("X", "limits.gpu", "")}},
		wantErr: "unsupported container resource : limits.gpu",
	}, {
		name: "configMap and secret keys, optional ones skipped",
		c: v1.Container{Env: []v1.EnvVar{
			cmKey("HOST", "cfg", "HOST", false),
			secretKey("PASS", "sec", "PASSWORD", false),
			cmKey("NO_KEY", "cfg", "nope", true),
			cmKey("NO_CM", "gone", "k", true),
			secretKey("NO_SKEY", "sec", "nope", true),
			secretKey("NO_SECRET", "gone", "k", true),
		}},
		want: []string{"HOST=db", "PASS=s3cret"},
	}, {
		name:      "missing configMap",
		c:         v1.Container{Env: []v1.EnvVar{cmKey("X", "x", "k", f)}},
		wantErr:   `configmap "x" not found`,
		wantNotFd: true,
	}, {
		name:      "missing secret",
		c:         v1.Container{Env: []v1.EnvVar{secretKey("X", "x", "k", f)}},
		wantErr:   `secret "x" not found`,
		wantNotFd: true,
	}, {
		name:      "missing envFrom configMap",
		c:         v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}}},
		wantErr:   `configmap "x" not found`,
		wantNotFd: true,
	}, {
		name:      "missing envFrom secret",
		c:         v1.Container{EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}}},
		wantErr:   `secret "x" not found`,
		wantNotFd: true,
	}, {
		name:    "missing configMap key",
		c:       v1.Container{Env: []v1.EnvVar{cmKey("X", "cfg", "k", f)}},
		wantErr: "couldn't find key k in ConfigMap ns/cfg",
	}, {
		name:    "missing secret key",
		c:       v1.Container{Env: []v1.EnvVar{secretKey("X", "sec", "k", f)}},
		wantErr: "couldn't find key k in Secret ns/sec",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod()
			if tc.pod != nil {
				tc.pod(pod)
			}
			inputs := in
			if tc.in != nil {
				inputs = *tc.in
			}
			c := tc.c
			c.Name = "app"
			pod.Spec.Containers = []v1.Container{c}
			got, err := Resolve(context.Background(), newSources(), pod, &pod.Spec.Containers[0], inputs)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if tc.wantNotFd && !apierrors.IsNotFound(err) {
				t.Errorf("error %v is not a NotFound", err)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, pairs(got)); diff != "" {
					t.Errorf("env (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestResolveFetchesEachSourceOnce(t *testing.T) {
	src := newSources()
	pod := basePod()
	c := &v1.Container{
		EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		Env:     []v1.EnvVar{cmKey("A", "cfg", "HOST", false), cmKey("B", "cfg", "PORT", false), secretKey("C", "sec", "PASSWORD", false), secretKey("D", "sec", "HOST", false)},
	}
	if _, err := Resolve(context.Background(), src, pod, c, Inputs{}); err != nil {
		t.Fatal(err)
	}
	if src.gets != 2 {
		t.Errorf("source GETs = %d, want 2", src.gets)
	}
}

func TestServiceEnv(t *testing.T) {
	svc := func(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
		return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	services := []*v1.Service{
		svc("default", "kubernetes", "10.96.0.1", v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP}),
		svc("ns", "my-db", "10.96.0.7", v1.ServicePort{Port: 5432}, v1.ServicePort{Name: "metrics-port", Port: 9187, Protocol: v1.ProtocolUDP}),
		svc("ns", "headless", v1.ClusterIPNone, v1.ServicePort{Port: 80}),
		svc("other", "elsewhere", "10.96.0.9", v1.ServicePort{Port: 80}),
	}
	kubernetes := []string{
		"KUBERNETES_PORT=tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
		"KUBERNETES_PORT_443_TCP_PORT=443",
		"KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_SERVICE_HOST=10.96.0.1",
		"KUBERNETES_SERVICE_PORT=443",
		"KUBERNETES_SERVICE_PORT_HTTPS=443",
	}
	myDB := []string{
		"MY_DB_PORT=tcp://10.96.0.7:5432",
		"MY_DB_PORT_5432_TCP=tcp://10.96.0.7:5432",
		"MY_DB_PORT_5432_TCP_ADDR=10.96.0.7",
		"MY_DB_PORT_5432_TCP_PORT=5432",
		"MY_DB_PORT_5432_TCP_PROTO=tcp",
		"MY_DB_PORT_9187_UDP=udp://10.96.0.7:9187",
		"MY_DB_PORT_9187_UDP_ADDR=10.96.0.7",
		"MY_DB_PORT_9187_UDP_PORT=9187",
		"MY_DB_PORT_9187_UDP_PROTO=udp",
		"MY_DB_SERVICE_HOST=10.96.0.7",
		"MY_DB_SERVICE_PORT=5432",
		"MY_DB_SERVICE_PORT_METRICS_PORT=9187",
	}
	tests := []struct {
		name  string
		links *bool
		env   []v1.EnvVar
		want  []string
	}{
		{name: "service links on", want: sortedUnion(kubernetes, myDB)},
		{name: "service links off", links: ptr(false), want: kubernetes},
		{name: "declared env wins and can refer to services", links: ptr(false),
			env:  []v1.EnvVar{{Name: "KUBERNETES_SERVICE_PORT", Value: "6443"}, {Name: "API", Value: "https://$(KUBERNETES_SERVICE_HOST)"}},
			want: append([]string{"KUBERNETES_SERVICE_PORT=6443", "API=https://10.96.0.1"}, without(kubernetes, "KUBERNETES_SERVICE_PORT=443")...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod()
			pod.Spec.EnableServiceLinks = tc.links
			got, err := Resolve(context.Background(), newSources(), pod, &v1.Container{Name: "app", Env: tc.env}, Inputs{Services: services})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, pairs(got)); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpandAndMap(t *testing.T) {
	env := Map([]*runtimeapi.KeyValue{{Key: "A", Value: []byte("1")}, {Key: "B", Value: []byte("")}})
	if diff := cmp.Diff(map[string]string{"A": "1", "B": ""}, env); diff != "" {
		t.Errorf("Map (-want +got):\n%s", diff)
	}
	for in, want := range map[string]string{"$(A)": "1", "$$(A)": "$(A)", "$(C)": "$(C)", "x$(B)y": "xy"} {
		if got := Expand(in, env); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func sortedUnion(a, b []string) []string {
	out := append(append([]string{}, a...), b...)
	sort.Strings(out)
	return out
}
