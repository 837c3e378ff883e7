package openapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// toMap round-trips a schema through JSON, to compare what clients see.
func toMap(t *testing.T, s any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func podDefinitions(t *testing.T, d Dialect) map[string]*spec.Schema {
	t.Helper()
	b := NewBuilder(d)
	b.Add(&corev1.Pod{}, schema.GroupVersionKind{Version: "v1", Kind: "Pod"})
	return b.Definitions()
}

func TestPodSchemaV3(t *testing.T) {
	defs := podDefinitions(t, V3)
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	tests := []struct {
		name string
		def  string
		path []string // property path below the definition
		want map[string]any
	}{
		{
			name: "containers: array of Container, merged by name",
			def:  "io.k8s.api.core.v1.PodSpec", path: []string{"containers"},
			want: map[string]any{
				"description":                  corev1.PodSpec{}.SwaggerDoc()["containers"],
				"type":                         "array",
				"items":                        ref("io.k8s.api.core.v1.Container"),
				"x-kubernetes-patch-strategy":  "merge",
				"x-kubernetes-patch-merge-key": "name",
				"x-kubernetes-list-type":       "map",
				"x-kubernetes-list-map-keys":   []any{"name"},
			},
		},
		{
			name: "ports: list map keyed by port and protocol",
			def:  "io.k8s.api.core.v1.Container", path: []string{"ports"},
			want: map[string]any{
				"description":                  corev1.Container{}.SwaggerDoc()["ports"],
				"type":                         "array",
				"items":                        ref("io.k8s.api.core.v1.ContainerPort"),
				"x-kubernetes-patch-strategy":  "merge",
				"x-kubernetes-patch-merge-key": "containerPort",
				"x-kubernetes-list-type":       "map",
				"x-kubernetes-list-map-keys":   []any{"containerPort", "protocol"},
			},
		},
		{
			name: "livenessProbe: described reference to Probe",
			def:  "io.k8s.api.core.v1.Container", path: []string{"livenessProbe"},
			want: map[string]any{
				"description": "Periodic probe of container liveness. Container will be restarted if the probe fails. Cannot be updated. More info: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle#container-probes",
				"allOf":       []any{ref("io.k8s.api.core.v1.Probe")},
			},
		},
		{
			name: "resource limits: map of Quantity",
			def:  "io.k8s.api.core.v1.ResourceRequirements", path: []string{"limits"},
			want: map[string]any{
				"description":          corev1.ResourceRequirements{}.SwaggerDoc()["limits"],
				"type":                 "object",
				"additionalProperties": ref("io.k8s.apimachinery.pkg.api.resource.Quantity"),
			},
		},
		{
			name: "int32 and int64",
			def:  "io.k8s.api.core.v1.PodSpec", path: []string{"terminationGracePeriodSeconds"},
			want: map[string]any{"description": corev1.PodSpec{}.SwaggerDoc()["terminationGracePeriodSeconds"], "type": "integer", "format": "int64"},
		},
		{
			name: "enum",
			def:  "io.k8s.api.core.v1.Container", path: []string{"imagePullPolicy"},
			want: map[string]any{
				"description": corev1.Container{}.SwaggerDoc()["imagePullPolicy"] + "\n\nPossible enum values:\n" +
					" - `\"Always\"` means that kubelet always attempts to pull the latest image. Container will fail If the pull fails.\n" +
					" - `\"IfNotPresent\"` means that kubelet pulls if the image isn't present on disk. Container will fail if the image isn't present and the pull fails.\n" +
					" - `\"Never\"` means that kubelet never pulls an image, but only uses a local image. Container will fail if the image isn't present",
				"type": "string",
				"enum": []any{"Always", "IfNotPresent", "Never"},
			},
		},
		{
			name: "inline TypeMeta flattened",
			def:  "io.k8s.api.core.v1.Pod", path: []string{"apiVersion"},
			want: map[string]any{"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
		},
		{
			name: "Time",
			def:  "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
			want: map[string]any{"description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.", "type": "string", "format": "date-time"},
		},
		{
			name: "IntOrString",
			def:  "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
			want: map[string]any{
				"description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.",
				"format":      "int-or-string",
				"oneOf":       []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}},
			},
		},
		{
			name: "secret data: bytes",
			def:  "io.k8s.api.core.v1.ConfigMapVolumeSource", path: []string{"defaultMode"},
			want: map[string]any{"description": corev1.ConfigMapVolumeSource{}.SwaggerDoc()["defaultMode"], "type": "integer", "format": "int32"},
		},
		{
			name: "ownerReferences merge on uid",
			def:  "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", path: []string{"ownerReferences"},
			want: map[string]any{
				"description":                  "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected. If this object is managed by a controller, then an entry in this list will point to this controller, with the controller field set to true. There cannot be more than one managing controller.",
				"type":                         "array",
				"items":                        ref("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"),
				"x-kubernetes-patch-strategy":  "merge",
				"x-kubernetes-patch-merge-key": "uid",
				"x-kubernetes-list-type":       "map",
				"x-kubernetes-list-map-keys":   []any{"uid"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := defs[tt.def]
			if def == nil {
				t.Fatalf("no definition %s", tt.def)
			}
			got := toMap(t, def)
			for _, p := range tt.path {
				props, _ := got["properties"].(map[string]any)
				got, _ = props[p].(map[string]any)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
		})
	}

	pod := toMap(t, defs["io.k8s.api.core.v1.Pod"])
	if diff := cmp.Diff([]any{map[string]any{"group": "", "version": "v1", "kind": "Pod"}}, pod["x-kubernetes-group-version-kind"]); diff != "" {
		t.Errorf("Pod GVK (-want +got):\n%s", diff)
	}
	if pod["description"] != (corev1.Pod{}).SwaggerDoc()[""] || pod["type"] != "object" {
		t.Errorf("Pod: description %q type %v", pod["description"], pod["type"])
	}
	container := toMap(t, defs["io.k8s.api.core.v1.Container"])
	if diff := cmp.Diff([]any{"name"}, container["required"]); diff != "" {
		t.Errorf("Container required (-want +got):\n%s", diff)
	}
	if got := toMap(t, defs["io.k8s.api.core.v1.SecretKeySelector"])["x-kubernetes-map-type"]; got != "atomic" {
		t.Errorf("SecretKeySelector x-kubernetes-map-type = %v, want atomic", got)
	}
	if got := toMap(t, defs["io.k8s.api.core.v1.PodSpec"])["properties"].(map[string]any)["nodeSelector"].(map[string]any)["x-kubernetes-map-type"]; got != "atomic" {
		t.Errorf("nodeSelector x-kubernetes-map-type = %v, want atomic", got)
	}
	for name, def := range defs {
		if def.Description == "" && !strings.HasPrefix(name, "io.k8s.api.core.v1.") {
			continue
		}
		if def.Description == "" {
			t.Errorf("%s has no description", name)
		}
	}
}

func TestSpecialTypesV2(t *testing.T) {
	defs := podDefinitions(t, V2)
	tests := []struct {
		def  string
		want map[string]any
	}{
		{"io.k8s.apimachinery.pkg.api.resource.Quantity", map[string]any{"type": "string"}},
		{"io.k8s.apimachinery.pkg.util.intstr.IntOrString", map[string]any{"type": "string", "format": "int-or-string"}},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.Time", map[string]any{"type": "string", "format": "date-time"}},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1", map[string]any{"type": "object"}},
	}
	for _, tt := range tests {
		t.Run(tt.def, func(t *testing.T) {
			got := toMap(t, defs[tt.def])
			delete(got, "description")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// v2 references carry the description beside $ref.
	probe := toMap(t, defs["io.k8s.api.core.v1.Container"])["properties"].(map[string]any)["livenessProbe"]
	want := map[string]any{"$ref": "#/definitions/io.k8s.api.core.v1.Probe", "description": corev1.Container{}.SwaggerDoc()["livenessProbe"]}
	if diff := cmp.Diff(want, probe); diff != "" {
		t.Errorf("v2 livenessProbe (-want +got):\n%s", diff)
	}
}

// The v3 definitions must be what server-side apply's type converter
// accepts.
func TestDefinitionsMakeATypeConverter(t *testing.T) {
	defs := Definitions([]Resource{
		{GVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Plural: "pods", Namespaced: true, Object: &corev1.Pod{}, List: &corev1.PodList{}},
		{GVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Plural: "deployments", Namespaced: true, Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{}},
	})
	tc, err := managedfields.NewTypeConverter(defs, false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	d := &appsv1.Deployment{}
	d.APIVersion, d.Kind, d.Name = "apps/v1", "Deployment", "web"
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "x", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}
	if _, err := tc.ObjectToTyped(d); err != nil {
		t.Fatalf("ObjectToTyped: %v", err)
	}
}

func TestBuildV3Documents(t *testing.T) {
	docs, err := BuildV3([]Resource{
		{GVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Plural: "pods", Namespaced: true, Object: &corev1.Pod{}, List: &corev1.PodList{},
			Verbs: []string{"get", "list", "create", "update", "patch", "delete", "deletecollection", "watch"}},
		{GVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Plural: "deployments", Namespaced: true, Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{},
			Verbs: []string{"get", "patch"}},
	}, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents, want api/v1 and apis/apps/v1", len(docs))
	}
	var apps struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(docs["apis/apps/v1"], &apps); err != nil {
		t.Fatal(err)
	}
	item := apps.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
	if item["get"] == nil || item["patch"] == nil || item["put"] != nil {
		t.Errorf("deployment item operations: %v", keys(item))
	}
	var patch struct {
		OperationID string `json:"operationId"`
		Parameters  []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		RequestBody struct {
			Content map[string]json.RawMessage `json:"content"`
		} `json:"requestBody"`
		GVK map[string]string `json:"x-kubernetes-group-version-kind"`
	}
	if err := json.Unmarshal(item["patch"], &patch); err != nil {
		t.Fatal(err)
	}
	if patch.OperationID != "patchAppsV1NamespacedDeployment" || patch.GVK["kind"] != "Deployment" || patch.RequestBody.Content["application/strategic-merge-patch+json"] == nil {
		t.Errorf("patch operation: %+v", patch)
	}
	hasFV := false
	for _, p := range patch.Parameters {
		hasFV = hasFV || (p.Name == "fieldValidation" && p.In == "query")
	}
	if !hasFV {
		t.Error("patch operation lacks the fieldValidation query parameter")
	}
	if apps.Components.Schemas["io.k8s.api.apps.v1.Deployment"] == nil || apps.Components.Schemas["io.k8s.api.core.v1.Pod"] != nil {
		t.Errorf("apps/v1 schemas: want Deployment and not Pod; have %d schemas", len(apps.Components.Schemas))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
