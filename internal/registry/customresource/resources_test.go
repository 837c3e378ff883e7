package customresource

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestResources(t *testing.T) {
	rs := widgets(t)
	if len(rs) != 2 {
		t.Fatalf("got %d descriptors, want 2 (v1 and v1beta1)", len(rs))
	}
	storedAs := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	for _, ver := range []string{"v1", "v1beta1"} {
		t.Run(ver, func(t *testing.T) {
			r := rs[ver]
			if r == nil {
				t.Fatalf("no descriptor for %s", ver)
			}
			got := []interface{}{r.GroupVersion.String(), r.Name, r.Singular, r.Kind, r.ShortNames, r.Categories, r.Namespaced, r.JSONOnly, r.Status, r.Scale != nil, r.Prune != nil}
			want := []interface{}{"example.com/" + ver, "widgets", "widget", "Widget", []string{"wd"}, []string{"all"}, true, true, true, true, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("descriptor (-want +got):\n%s", diff)
			}
			obj, ok := r.New().(*unstructured.Unstructured)
			if !ok || obj.GetAPIVersion() != "example.com/"+ver || obj.GetKind() != "Widget" {
				t.Errorf("New() = %#v, want an example.com/%s Widget", r.New(), ver)
			}
			list, ok := r.NewList().(*unstructured.UnstructuredList)
			if !ok || list.GetAPIVersion() != "example.com/"+ver || list.GetKind() != "WidgetList" {
				t.Errorf("NewList() = %#v, want an example.com/%s WidgetList", r.NewList(), ver)
			}
			if ver == "v1" {
				if r.StoredAs != nil || r.ToStored != nil || r.FromStored != nil {
					t.Errorf("the storage version is stored as %v, want as itself", r.StoredAs)
				}
				return
			}
			if r.StoredAs == nil || *r.StoredAs != storedAs || r.ToStored == nil || r.FromStored == nil {
				t.Errorf("v1beta1 is stored as %v, want %v with converters", r.StoredAs, storedAs)
			}
		})
	}
}

func TestResourcesNames(t *testing.T) {
	tests := []struct {
		name         string
		edit         func(*apiextensionsv1.CustomResourceDefinition)
		wantName     string
		wantSingular string
		wantListKind string
		wantNS       bool
	}{{
		name:         "spec names",
		wantName:     "widgets",
		wantSingular: "widget",
		wantListKind: "WidgetList",
		wantNS:       true,
	}, {
		name: "accepted names win",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Status.AcceptedNames = apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Kind: "Widget"}
		},
		wantName:     "gadgets",
		wantSingular: "widget",
		wantListKind: "WidgetList",
		wantNS:       true,
	}, {
		name: "cluster scoped",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Scope = apiextensionsv1.ClusterScoped
			crd.Spec.Names.ListKind = "WidgetCollection"
		},
		wantName:     "widgets",
		wantSingular: "widget",
		wantListKind: "WidgetCollection",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resourcesByVersion(t, loadCRD(t, widgetsCRD, tt.edit))["v1"]
			list := r.NewList().(*unstructured.UnstructuredList)
			got := []interface{}{r.Name, r.Singular, list.GetKind(), r.Namespaced}
			want := []interface{}{tt.wantName, tt.wantSingular, tt.wantListKind, tt.wantNS}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResourcesVersions(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*apiextensionsv1.CustomResourceDefinition)
		want    []string // served versions, in order
		wantErr string
	}{{
		name: "both served",
		want: []string{"v1", "v1beta1"},
	}, {
		name: "v1beta1 not served",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.Versions[1].Served = false },
		want: []string{"v1"},
	}, {
		name: "nothing served",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Versions[0].Served = false
			crd.Spec.Versions[1].Served = false
		},
	}, {
		name:    "storage version not served",
		edit:    func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.Versions[0].Served = false },
		wantErr: "storage version v1 is not served",
	}, {
		name:    "no storage version",
		edit:    func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.Versions[0].Storage = false },
		wantErr: "no storage version",
	}, {
		name: "schema not structural",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			// A property without a type is not structural.
			crd.Spec.Versions[1].Schema.OpenAPIV3Schema.Properties["spec"].Properties["legacy"] = apiextensionsv1.JSONSchemaProps{}
		},
		wantErr: "version v1beta1: the schema is not structural",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Resources(loadCRD(t, widgetsCRD, tt.edit), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resources() error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resources: %v", err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.GroupVersion.Version)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("served versions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConversion(t *testing.T) {
	r := widgets(t)["v1beta1"]
	in := object(t, `{"apiVersion":"example.com/v1beta1","kind":"Widget","metadata":{"name":"w","namespace":"default"},
		"spec":{"size":"small","color":"green","replicas":2,"legacy":"x"}}`)
	before := in.DeepCopy()

	stored, err := r.ToStored(in)
	if err != nil {
		t.Fatalf("ToStored: %v", err)
	}
	// v1 does not know spec.legacy: the storage version's schema prunes
	// it, as upstream's converter does.
	wantStored := object(t, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"},
		"spec":{"size":"small","color":"green","replicas":2}}`)
	if diff := cmp.Diff(wantStored.Object, stored.(*unstructured.Unstructured).Object); diff != "" {
		t.Errorf("ToStored (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before.Object, in.Object); diff != "" {
		t.Errorf("ToStored changed its input (-before +after):\n%s", diff)
	}

	// Read back: apiVersion is v1beta1's. The storage version's defaults
	// apply first, as upstream defaults on read: color is v1's blue, not
	// v1beta1's red, and v1's maxReplicas is pruned by v1beta1's schema.
	unstructured.RemoveNestedField(stored.(*unstructured.Unstructured).Object, "spec", "color")
	back, err := r.FromStored(stored)
	if err != nil {
		t.Fatalf("FromStored: %v", err)
	}
	wantBack := object(t, `{"apiVersion":"example.com/v1beta1","kind":"Widget","metadata":{"name":"w","namespace":"default"},
		"spec":{"size":"small","color":"blue","replicas":2}}`)
	if diff := cmp.Diff(wantBack.Object, back.(*unstructured.Unstructured).Object); diff != "" {
		t.Errorf("FromStored (-want +got):\n%s", diff)
	}
	if stored.(*unstructured.Unstructured).GetAPIVersion() != "example.com/v1" {
		t.Errorf("FromStored changed its input")
	}

	t.Run("webhook", func(t *testing.T) {
		crd := loadCRD(t, widgetsCRD, func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter}
		})
		rs := resourcesByVersion(t, crd)
		if _, err := rs["v1beta1"].ToStored(in); !errors.Is(err, ErrWebhookConversion) {
			t.Errorf("ToStored with a webhook: error %v, want ErrWebhookConversion", err)
		}
		if _, err := rs["v1beta1"].FromStored(stored); !errors.Is(err, ErrWebhookConversion) {
			t.Errorf("FromStored with a webhook: error %v, want ErrWebhookConversion", err)
		}
		if rs["v1"].ToStored != nil {
			t.Errorf("the storage version needs no conversion")
		}
	})
}

// TestReadHookOnlyWhenNeeded: the storage version's descriptor completes
// objects on read only when storage may hold another version or the
// schema has defaults; otherwise reads (every LIST) stay the plain path.
func TestReadHookOnlyWhenNeeded(t *testing.T) {
	crd := func(versions []string, stored []string, withDefault bool) *apiextensionsv1.CustomResourceDefinition {
		props := map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "string"}}
		if withDefault {
			props["size"] = apiextensionsv1.JSONSchemaProps{Type: "string", Default: &apiextensionsv1.JSON{Raw: []byte(`"small"`)}}
		}
		schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type:       "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", Properties: props}},
		}}
		c := &apiextensionsv1.CustomResourceDefinition{
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Kind: "Gadget"},
			},
			Status: apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: stored},
		}
		c.Name = "gadgets.example.com"
		for i, v := range versions {
			c.Spec.Versions = append(c.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{Name: v, Served: true, Storage: i == 0, Schema: schema})
		}
		return c
	}
	tests := []struct {
		name string
		crd  *apiextensionsv1.CustomResourceDefinition
		want bool
	}{
		{"one version, no defaults", crd([]string{"v1"}, []string{"v1"}, false), false},
		{"one version with a default", crd([]string{"v1"}, []string{"v1"}, true), true},
		{"two versions", crd([]string{"v1", "v1beta1"}, []string{"v1"}, false), true},
		{"once stored as another version", crd([]string{"v1"}, []string{"v1beta1", "v1"}, false), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Resources(tc.crd, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := rs[0].Read != nil; got != tc.want {
				t.Errorf("storage version has a Read hook: %v, want %v", got, tc.want)
			}
		})
	}
}
