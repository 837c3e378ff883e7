package customresource

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/skiff-io/skiff/internal/registry"
)

// exercise runs every func of res on obj and old as the server would on
// writes and reads. It must not panic, whatever the objects hold, nor
// change old.
func exercise(t testing.TB, res *registry.Resource, obj, old *unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	oldBefore := old.DeepCopy()
	defer func() {
		// reflect, not cmp: cmp is slow on deeply nested objects.
		if !reflect.DeepEqual(oldBefore.Object, old.Object) {
			t.Errorf("old changed:\n%s", cmp.Diff(oldBefore.Object, old.Object))
		}
	}()
	st := res.Strategy
	res.Prune(obj)
	st.Default(obj)
	created := obj.DeepCopy()
	st.PrepareForCreate(ctx, created)
	st.Validate(created)
	st.WarningsOnCreate(created)

	updated := obj.DeepCopy()
	st.PrepareForUpdate(ctx, updated, old)
	st.ValidateUpdate(updated, old)
	st.WarningsOnUpdate(updated, old)

	status := obj.DeepCopy()
	st.PrepareForStatusUpdate(ctx, status, old)
	st.ValidateStatusUpdate(status, old)

	res.Table.Row(obj)
	res.Fields(obj)
	res.Scale.Get(obj)
	res.Scale.SetReplicas(obj.DeepCopy(), 3)
	if res.ToStored != nil {
		if stored, err := res.ToStored(obj); err == nil {
			_, _ = res.FromStored(stored)
		}
	}
	// Objects with nothing in them at all.
	empty := &unstructured.Unstructured{}
	res.Prune(empty)
	st.Validate(&unstructured.Unstructured{})
	none := &unstructured.Unstructured{}
	st.ValidateUpdate(&unstructured.Unstructured{}, none)
	st.ValidateStatusUpdate(obj, none)
	st.PrepareForUpdate(ctx, &unstructured.Unstructured{}, none)
	st.PrepareForStatusUpdate(ctx, &unstructured.Unstructured{}, none)
	if none.Object != nil {
		t.Errorf("an empty old object was given content: %v", none.Object)
	}
	res.Table.Row(&unstructured.Unstructured{})
	res.Fields(&unstructured.Unstructured{})
}

// TestWrongTypesEverywhere puts values of every JSON type in every field
// of the schema.
func TestWrongTypesEverywhere(t *testing.T) {
	values := []string{`null`, `true`, `-1`, `2.5`, `"s"`, `[]`, `[1,{"a":null}]`, `{}`, `{"a":[null]}`}
	paths := [][]string{
		{"apiVersion"}, {"kind"}, {"metadata"}, {"metadata", "name"}, {"metadata", "labels"}, {"metadata", "finalizers"},
		{"metadata", "managedFields"}, {"metadata", "generation"}, {"metadata", "creationTimestamp"},
		{"spec"}, {"spec", "size"}, {"spec", "replicas"}, {"spec", "config"}, {"spec", "template"},
		{"spec", "template", "metadata"}, {"spec", "template", "kind"}, {"spec", "ports"}, {"status"},
		{"status", "replicas"}, {"status", "selector"}, {"status", "lastUpdated"},
	}
	rs := widgets(t)
	for _, path := range paths {
		for _, v := range values {
			t.Run(strings.Join(path, ".")+"="+v, func(t *testing.T) {
				var val interface{}
				if err := utiljson.Unmarshal([]byte(v), &val); err != nil {
					t.Fatal(err)
				}
				for _, res := range rs {
					obj := widget(t, `"ports":[{"name":"a"}],"template":{"apiVersion":"v1","kind":"Pod"}`)
					if err := unstructured.SetNestedField(obj.Object, val, path...); err != nil {
						obj.Object[path[0]] = val
					}
					old := widget(t, "")
					old.Object["status"] = map[string]interface{}{"replicas": int64(1)}
					exercise(t, res, obj, old)
					// And the other way round: the wrong value stored.
					exercise(t, res, widget(t, ""), obj)
				}
			})
		}
	}
}

// TestDeepNesting sends objects nested as deep as the JSON decoder allows
// in a preserve-unknown-fields subtree, an unknown field and an embedded
// resource.
func TestDeepNesting(t *testing.T) {
	const depth = 9000
	deepObject := strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth)
	deepList := strings.Repeat(`[`, depth) + strings.Repeat(`]`, depth)
	rs := widgets(t)
	for _, spec := range []string{
		`"config":` + deepObject,
		`"unknown":` + deepList,
		`"template":{"apiVersion":"v1","kind":"Pod","spec":` + deepObject + `}`,
		`"ports":[{"name":"a","extra":` + deepList + `}]`,
	} {
		obj := widget(t, spec)
		for _, res := range rs {
			exercise(t, res, obj.DeepCopy(), obj.DeepCopy())
		}
	}
	// The preserved subtree survives pruning whole.
	obj := widget(t, `"config":`+deepObject)
	rs["v1"].Prune(obj)
	n := 0
	for x := obj.Object["spec"].(map[string]interface{})["config"]; x != nil; n++ {
		m, ok := x.(map[string]interface{})
		if !ok {
			break
		}
		x = m["a"]
	}
	if n != depth {
		t.Errorf("spec.config is %d deep after pruning, want %d", n, depth)
	}
}

// FuzzStrategy feeds arbitrary JSON bodies through every func of both
// versions' descriptors. Nothing may panic.
func FuzzStrategy(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"d"},"spec":{"size":"small","replicas":2,"ports":[{"name":"a"},{"name":"a"}]}}`))
	f.Add([]byte(`{"apiVersion":"example.com/v1beta1","kind":"Widget","metadata":{"name":"w","labels":{"a":1}},"spec":{"template":{"metadata":[]}},"status":{"replicas":-5}}`))
	f.Add([]byte(`{"spec":{"config":{"x":[[[{}]]]},"replicas":1e300},"status":null}`))
	rs := widgets(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		m := map[string]interface{}{}
		if err := utiljson.Unmarshal(body, &m); err != nil {
			return
		}
		obj := &unstructured.Unstructured{Object: m}
		for _, res := range rs {
			exercise(t, res, obj.DeepCopy(), widget(t, ""))
			exercise(t, res, widget(t, ""), obj.DeepCopy())
		}
	})
}

// The descriptors serve concurrent requests: nothing they keep may be
// written while they run (run with -race).
func TestConcurrentUse(t *testing.T) {
	res := widgets(t)["v1"]
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				obj := widget(t, `"replicas":11`)
				if errs := res.Strategy.Validate(obj); len(errs) != 1 {
					t.Errorf("Validate: %v, want the CEL rule's error", errs)
				}
				if cells := res.Table.Row(obj); cells[1] != "small" {
					t.Errorf("Row: %v", cells)
				}
				if f := res.Fields(obj); f["spec.color"] != "blue" {
					t.Errorf("Fields: %v", f)
				}
			}
		}()
	}
	wg.Wait()
}
