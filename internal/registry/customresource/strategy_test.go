package customresource

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// withoutStatusSubresource is widgetsCRD with no status subresource in
// either version.
func withoutStatusSubresource(crd *apiextensionsv1.CustomResourceDefinition) {
	for i := range crd.Spec.Versions {
		crd.Spec.Versions[i].Subresources = nil
	}
}

func TestPrepareForCreate(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*apiextensionsv1.CustomResourceDefinition)
		wantStatus bool
	}{
		{name: "status subresource drops status"},
		{name: "no status subresource keeps it", edit: withoutStatusSubresource, wantStatus: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resourcesByVersion(t, loadCRD(t, widgetsCRD, tt.edit))["v1"]
			if res.Status == tt.wantStatus {
				t.Fatalf("Status = %v", res.Status)
			}
			obj := widget(t, "")
			obj.Object["status"] = map[string]interface{}{"phase": "Ready"}
			obj.SetGeneration(7)
			res.Strategy.PrepareForCreate(context.Background(), obj)
			if _, has := obj.Object["status"]; has != tt.wantStatus {
				t.Errorf("status kept = %v, want %v", has, tt.wantStatus)
			}
			if g := obj.GetGeneration(); g != 1 {
				t.Errorf("generation = %d, want 1", g)
			}
		})
	}
}

func TestPrepareForUpdate(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*apiextensionsv1.CustomResourceDefinition)
		change     func(obj *unstructured.Unstructured)
		wantGen    int64
		wantStatus interface{} // status after the write; nil: none
	}{{
		name:       "spec change bumps generation",
		change:     func(obj *unstructured.Unstructured) { obj.Object["spec"].(map[string]interface{})["color"] = "green" },
		wantGen:    4,
		wantStatus: "old",
	}, {
		name:       "metadata change does not",
		change:     func(obj *unstructured.Unstructured) { obj.SetLabels(map[string]string{"a": "b"}) },
		wantGen:    3,
		wantStatus: "old",
	}, {
		name:       "status write through the main resource is ignored",
		change:     func(obj *unstructured.Unstructured) { obj.Object["status"] = map[string]interface{}{"phase": "new"} },
		wantGen:    3,
		wantStatus: "old",
	}, {
		name:       "status cannot be removed either",
		change:     func(obj *unstructured.Unstructured) { delete(obj.Object, "status") },
		wantGen:    3,
		wantStatus: "old",
	}, {
		name:       "any other top-level field bumps generation",
		change:     func(obj *unstructured.Unstructured) { obj.Object["data"] = "x" },
		wantGen:    4,
		wantStatus: "old",
	}, {
		name:       "without status subresource status is written and bumps generation",
		edit:       withoutStatusSubresource,
		change:     func(obj *unstructured.Unstructured) { obj.Object["status"] = map[string]interface{}{"phase": "new"} },
		wantGen:    4,
		wantStatus: "new",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resourcesByVersion(t, loadCRD(t, widgetsCRD, tt.edit))["v1"]
			old := widget(t, "")
			old.SetGeneration(3)
			old.Object["status"] = map[string]interface{}{"phase": "old"}
			obj := old.DeepCopy()
			tt.change(obj)
			res.Strategy.PrepareForUpdate(context.Background(), obj, old)
			if g := obj.GetGeneration(); g != tt.wantGen {
				t.Errorf("generation = %d, want %d", g, tt.wantGen)
			}
			phase, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "phase")
			if phase != tt.wantStatus {
				t.Errorf("status.phase = %v, want %v", phase, tt.wantStatus)
			}
		})
	}
}

func TestPrepareForStatusUpdate(t *testing.T) {
	res := widgets(t)["v1"]
	old := widget(t, "")
	old.SetGeneration(3)
	old.SetLabels(map[string]string{"a": "old"})
	old.Object["status"] = map[string]interface{}{"phase": "old"}

	t.Run("status only", func(t *testing.T) {
		obj := old.DeepCopy()
		obj.Object["spec"].(map[string]interface{})["color"] = "green"
		obj.SetLabels(map[string]string{"a": "new"})
		obj.SetGeneration(9)
		obj.Object["status"] = map[string]interface{}{"phase": "new"}
		managed := []metav1.ManagedFieldsEntry{{Manager: "ctl", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status"}}
		obj.SetManagedFields(managed)

		res.Strategy.PrepareForStatusUpdate(context.Background(), obj, old)

		want := old.DeepCopy()
		want.Object["status"] = map[string]interface{}{"phase": "new"}
		want.SetManagedFields(managed)
		if diff := cmp.Diff(want.Object, obj.Object); diff != "" {
			t.Errorf("after a status write (-want +got):\n%s", diff)
		}
	})
	t.Run("status removed", func(t *testing.T) {
		obj := old.DeepCopy()
		delete(obj.Object, "status")
		res.Strategy.PrepareForStatusUpdate(context.Background(), obj, old)
		if _, ok := obj.Object["status"]; ok {
			t.Errorf("status kept, want it removed as the write asked")
		}
		if obj.Object["spec"] == nil {
			t.Errorf("spec lost")
		}
	})
}

func TestScale(t *testing.T) {
	tests := []struct {
		name                 string
		obj                  string
		wantSpec, wantStatus int32
		wantSelector         string
		set                  int32
		wantAfterSet         interface{}
	}{{
		name:         "all set",
		obj:          `{"spec":{"replicas":3},"status":{"replicas":2,"selector":"app=w"}}`,
		wantSpec:     3,
		wantStatus:   2,
		wantSelector: "app=w",
		set:          5,
		wantAfterSet: int64(5),
	}, {
		name:         "missing replicas read as 0",
		obj:          `{"spec":{}}`,
		set:          1,
		wantAfterSet: int64(1),
	}, {
		name:         "no spec at all",
		obj:          `{}`,
		set:          2,
		wantAfterSet: int64(2),
	}, {
		name:         "wrong types read as 0",
		obj:          `{"spec":{"replicas":"three"},"status":{"replicas":[1],"selector":7}}`,
		set:          4,
		wantAfterSet: int64(4),
	}, {
		name:         "spec of the wrong type is left alone",
		obj:          `{"spec":"x"}`,
		set:          4,
		wantAfterSet: nil,
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.obj)
			spec, status, sel := res.Scale.Get(obj)
			if spec != tt.wantSpec || status != tt.wantStatus || sel != tt.wantSelector {
				t.Errorf("Get = %d, %d, %q; want %d, %d, %q", spec, status, sel, tt.wantSpec, tt.wantStatus, tt.wantSelector)
			}
			res.Scale.SetReplicas(obj, tt.set)
			got, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "replicas")
			if got != tt.wantAfterSet {
				t.Errorf("after SetReplicas(%d): spec.replicas = %#v, want %#v", tt.set, got, tt.wantAfterSet)
			}
		})
	}
	if r := resourcesByVersion(t, loadCRD(t, widgetsCRD, withoutStatusSubresource))["v1"]; r.Scale != nil {
		t.Errorf("a version without a scale subresource has Scale set")
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name string
		edit func(*apiextensionsv1.CustomResourceDefinition)
		obj  string
		want map[string]string
	}{{
		name: "namespaced",
		obj:  `{"metadata":{"name":"w","namespace":"ns"},"spec":{"color":"blue"}}`,
		want: map[string]string{"metadata.name": "w", "metadata.namespace": "ns", "spec.color": "blue"},
	}, {
		name: "missing selectable field is empty",
		obj:  `{"metadata":{"name":"w","namespace":"ns"},"spec":{}}`,
		want: map[string]string{"metadata.name": "w", "metadata.namespace": "ns", "spec.color": ""},
	}, {
		name: "values are formatted with fmt.Sprint",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.replicas"}, {JSONPath: ".spec.enabled"}}
		},
		obj:  `{"metadata":{"name":"w","namespace":"ns"},"spec":{"replicas":3,"enabled":true}}`,
		want: map[string]string{"metadata.name": "w", "metadata.namespace": "ns", "spec.replicas": "3", "spec.enabled": "true"},
	}, {
		name: "cluster scoped has no namespace",
		edit: func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.Scope = apiextensionsv1.ClusterScoped },
		obj:  `{"metadata":{"name":"w"},"spec":{"color":"red"}}`,
		want: map[string]string{"metadata.name": "w", "spec.color": "red"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resourcesByVersion(t, loadCRD(t, widgetsCRD, tt.edit))["v1"]
			got := map[string]string(res.Fields(object(t, tt.obj)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name       string
		finalizers []string
		old        []string
		want       []string
	}{{
		name:       "qualified finalizers",
		finalizers: []string{"example.com/cleanup", metav1.FinalizerOrphanDependents},
	}, {
		name:       "unqualified finalizers",
		finalizers: []string{"cleanup", "example.com", "bad name"},
		want: []string{
			`metadata.finalizers: "bad name": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
			`metadata.finalizers: "bad name": prefer a domain-qualified finalizer name to avoid accidental conflicts with other finalizer writers`,
			`metadata.finalizers: "cleanup": prefer a domain-qualified finalizer name to avoid accidental conflicts with other finalizer writers`,
			`metadata.finalizers: "example.com": prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers`,
		},
	}, {
		name:       "only added finalizers warn on update",
		finalizers: []string{"cleanup", "example.com/x"},
		old:        []string{"cleanup"},
	}}
	res := widgets(t)["v1"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := widget(t, "")
			obj.SetFinalizers(tt.finalizers)
			var got []string
			if tt.old == nil {
				got = res.Strategy.WarningsOnCreate(obj)
			} else {
				old := widget(t, "")
				old.SetFinalizers(tt.old)
				got = res.Strategy.WarningsOnUpdate(obj, old)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNameValidation(t *testing.T) {
	res := widgets(t)["v1"]
	for name, valid := range map[string]bool{"w-1.example": true, "W": false, "a_b": false, "a/b": false} {
		if got := len(res.Strategy.NameValidation(name, false)) == 0; got != valid {
			t.Errorf("name %q valid = %v, want %v", name, got, valid)
		}
	}
}
