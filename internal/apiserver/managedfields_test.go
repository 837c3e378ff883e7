package apiserver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-io/skiff/internal/storage"
)

// storagelessServer serves every resource with no store behind it: enough
// for the field managers, which never touch storage.
func storagelessServer(t testing.TB) *Server {
	t.Helper()
	s, err := New(Config{Resources: allResources(), NewStorage: func(storage.Config) (storage.Interface, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPrefixFromUserAgent(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"kubectl/v1.32.4 (linux/amd64) kubernetes/abc", "kubectl"},
		{"kube-controller-manager/v1.37.2", "kube-controller-manager"},
		{"", ""},
		{"no-slash", "no-slash"},
		{"tab\there/1", "tabhere"},
		{strings.Repeat("x", 200), strings.Repeat("x", 128)},
	}
	for _, tt := range tests {
		if got := prefixFromUserAgent(tt.ua); got != tt.want {
			t.Errorf("prefixFromUserAgent(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

// Every served kind must be known to the type converter: a create of each,
// through the main resource and its status, records its fields.
func TestFieldManagersKnowEveryKind(t *testing.T) {
	s := storagelessServer(t)
	for gvr, sv := range s.resources {
		if sv.res.Create != nil {
			continue
		}
		for _, sub := range []string{"", "status"} {
			if sub == "status" && !sv.res.Status {
				continue
			}
			fm, err := s.fieldManager(sv, sub)
			if err != nil || fm == nil {
				t.Fatalf("%s %q: field manager %v, %v", gvr, sub, fm, err)
			}
			live, obj := sv.res.New(), sv.res.New()
			gvk := sv.res.GroupVersionKind()
			live.GetObjectKind().SetGroupVersionKind(gvk)
			obj.GetObjectKind().SetGroupVersionKind(gvk)
			m, _ := meta.Accessor(obj)
			m.SetName("x")
			m.SetLabels(map[string]string{"a": "b"})
			if sv.res.Strategy.Default != nil {
				sv.res.Strategy.Default(obj)
			}
			out, err := fm.Update(live, obj, "test")
			if err != nil {
				t.Errorf("%s %q: %v", gvr, sub, err)
				continue
			}
			om, _ := meta.Accessor(out)
			if sub == "" && len(om.GetManagedFields()) != 1 {
				t.Errorf("%s: managedFields %+v", gvr, om.GetManagedFields())
			}
		}
	}
}

func TestObjectConverterAcrossVersions(t *testing.T) {
	s := storagelessServer(t)
	conv := objectConverter{s: s}
	tests := []struct {
		name string
		in   runtime.Object
		to   schema.GroupVersion
		want func(t *testing.T, out runtime.Object)
	}{{
		name: "unstructured to typed, same version",
		in: &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "c"}, "data": map[string]any{"k": "v"}}},
		to: corev1.SchemeGroupVersion,
		want: func(t *testing.T, out runtime.Object) {
			if cm, ok := out.(*corev1.ConfigMap); !ok || cm.Data["k"] != "v" {
				t.Errorf("got %#v", out)
			}
		},
	}, {
		name: "hpa v2 to v1",
		in: &autoscalingv2.HorizontalPodAutoscaler{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 7}},
		to: autoscalingv1.SchemeGroupVersion,
		want: func(t *testing.T, out runtime.Object) {
			if h, ok := out.(*autoscalingv1.HorizontalPodAutoscaler); !ok || h.Spec.MaxReplicas != 7 {
				t.Errorf("got %#v", out)
			}
		},
	}, {
		name: "core event to events.k8s.io",
		in:   &corev1.Event{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Event"}, Reason: "Boom"},
		to:   eventsv1.SchemeGroupVersion,
		want: func(t *testing.T, out runtime.Object) {
			if e, ok := out.(*eventsv1.Event); !ok || e.Reason != "Boom" {
				t.Errorf("got %#v", out)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := conv.ConvertToVersion(tt.in, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.to.String(), out.GetObjectKind().GroupVersionKind().GroupVersion().String()); diff != "" {
				t.Errorf("version (-want +got):\n%s", diff)
			}
			tt.want(t, out)
		})
	}
	if _, err := conv.ConvertToVersion(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}, schema.GroupVersion{Group: "apps", Version: "v1"}); !runtime.IsNotRegisteredError(err) {
		t.Errorf("conversion to an unserved version: want a not-registered error, got %v", err)
	}
}

// A status write cannot come to own the spec, nor a main-resource write
// the status.
func TestResetFields(t *testing.T) {
	s := storagelessServer(t)
	sv := s.resources[schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}]
	main := s.resetFields(sv, "")["apps/v1"]
	status := s.resetFields(sv, "status")["apps/v1"]
	if main == nil || status == nil {
		t.Fatalf("reset filters: main %v, status %v", main, status)
	}
	for _, tt := range []struct {
		sub  string
		sets string
		kept bool
	}{
		{"", "spec", true}, {"", "status", false},
		{"status", "status", true}, {"status", "spec", false}, {"status", "metadata", true},
	} {
		f := main
		if tt.sub == "status" {
			f = status
		}
		got := !f.Filter(fieldSet(tt.sets)).Empty()
		if got != tt.kept {
			t.Errorf("%q write of %s: kept %v, want %v", tt.sub, tt.sets, got, tt.kept)
		}
	}
}

func fieldSet(top string) *fieldpath.Set {
	return fieldpath.NewSet(fieldpath.MakePathOrDie(top, "x"))
}

// A write through pods/resize comes to own only the containers' resources
// and resizePolicy (and the pod's resources), and one through
// pods/ephemeralcontainers only spec.ephemeralContainers, as upstream's
// include filters: not the containers' images, nor the labels.
func TestPodSubresourcesOwnOnlyTheirFields(t *testing.T) {
	s := storagelessServer(t)
	sv := s.resources[schema.GroupVersionResource{Version: "v1", Resource: "pods"}]
	app := fieldpath.KeyByFields("name", "app")
	for _, tt := range []struct {
		sub  string
		path fieldpath.Path
		kept bool
	}{
		{"resize", fieldpath.MakePathOrDie("spec", "containers", app, "resources", "limits", "cpu"), true},
		{"resize", fieldpath.MakePathOrDie("spec", "containers", app, "resizePolicy"), true},
		{"resize", fieldpath.MakePathOrDie("spec", "initContainers", app, "resources", "requests"), true},
		{"resize", fieldpath.MakePathOrDie("spec", "resources", "limits"), true},
		{"resize", fieldpath.MakePathOrDie("spec", "containers", app, "image"), false},
		{"resize", fieldpath.MakePathOrDie("spec", "containers", app, "name"), false},
		{"resize", fieldpath.MakePathOrDie("metadata", "labels", "a"), false},
		{"ephemeralcontainers", fieldpath.MakePathOrDie("spec", "ephemeralContainers", app, "image"), true},
		{"ephemeralcontainers", fieldpath.MakePathOrDie("spec", "containers", app, "image"), false},
		{"ephemeralcontainers", fieldpath.MakePathOrDie("status", "phase"), false},
	} {
		f := s.resetFields(sv, tt.sub)["v1"]
		if f == nil {
			t.Fatalf("pods/%s: no field filter", tt.sub)
		}
		got := !f.Filter(fieldpath.NewSet(tt.path)).Empty()
		if got != tt.kept {
			t.Errorf("pods/%s write of %s: owned %v, want %v", tt.sub, tt.path, got, tt.kept)
		}
	}
}
