package registry

import (
	"context"
	"reflect"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
)

// structField returns the addressable field name of the struct obj points
// to, or an invalid Value when there is none.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}
	}
	v = v.Elem()
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.FieldByName(name)
}

// DefaultPrepareForCreate resets status to its zero value and, for types
// with a spec, sets metadata.generation to 1.
func DefaultPrepareForCreate(_ context.Context, obj runtime.Object) {
	if st := structField(obj, "Status"); st.IsValid() && st.CanSet() {
		st.Set(reflect.Zero(st.Type()))
	}
	if sp := structField(obj, "Spec"); sp.IsValid() {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetGeneration(1)
		}
	}
}

// DefaultPrepareForUpdate keeps status from old and bumps generation when
// the spec changed (or keeps it when not).
func DefaultPrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if st := structField(obj, "Status"); st.IsValid() && st.CanSet() {
		st.Set(structField(old, "Status"))
	}
	sp := structField(obj, "Spec")
	if !sp.IsValid() {
		return
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	om, _ := meta.Accessor(old)
	gen := om.GetGeneration()
	if !apiequality.Semantic.DeepEqual(sp.Interface(), structField(old, "Spec").Interface()) {
		gen++
	}
	m.SetGeneration(gen)
}

// DefaultPrepareForStatusUpdate keeps everything of old but status, labels
// and annotations: a status write cannot change the spec.
func DefaultPrepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {
	nv, ov := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	for i := 0; i < nv.NumField(); i++ {
		switch nv.Type().Field(i).Name {
		case "Status", "TypeMeta", "ObjectMeta":
			continue
		}
		if nv.Field(i).CanSet() {
			nv.Field(i).Set(ov.Field(i))
		}
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	om, _ := meta.Accessor(old)
	m.SetGeneration(om.GetGeneration())
	m.SetFinalizers(om.GetFinalizers())
	m.SetOwnerReferences(om.GetOwnerReferences())
}

// NameIsDNSSubdomain is the default name check (most resources).
func NameIsDNSSubdomain(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

// NameIsDNSLabel is the name check of namespaces, services and the like.
func NameIsDNSLabel(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Label(name)
}

// NameIsPathSegment accepts any name that is a valid URL path segment
// (rbac roles, for example).
func NameIsPathSegment(name string, prefix bool) []string {
	switch name {
	case ".", "..":
		return []string{"may not be '" + name + "'"}
	}
	for _, c := range name {
		if c == '/' || c == '%' {
			return []string{"may not contain '" + string(c) + "'"}
		}
	}
	return nil
}

// maskTrailingDash lets generateName prefixes end in a dash ("web-").
func maskTrailingDash(name string) string {
	if len(name) > 1 && name[len(name)-1] == '-' {
		return name[:len(name)-1] + "a"
	}
	return name
}

// Age renders an object's age as `kubectl get` shows it ("5m", "3d2h").
func Age(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "<unknown>"
	}
	return Since(m.GetCreationTimestamp())
}

// Since renders the time since t as upstream's tables do; "<unknown>" for
// the zero time.
func Since(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// NameColumn and AgeColumn are the two columns every table has.
var (
	NameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
	AgeColumn  = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}
)
