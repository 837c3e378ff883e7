package storage

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-io/skiff/internal/registry"
)

func ptr[T any](v T) *T { return &v }

// errFields renders errs as "Type field" for comparison.
func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

// checkErrs compares errs with want ("Type field" each) and, when detail
// is set, requires one of them to say it in full (e.Error()).
func checkErrs(t *testing.T, errs field.ErrorList, want []string, detail string) {
	t.Helper()
	if diff := cmp.Diff(want, errFields(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\n%v", diff, errs)
	}
	if detail == "" {
		return
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), detail) {
			return
		}
	}
	t.Errorf("no error says %q: %v", detail, errs)
}

func descriptor(t *testing.T, name string) *registry.Resource {
	t.Helper()
	for _, r := range Resources() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource %q", name)
	return nil
}

func TestDescriptors(t *testing.T) {
	type desc struct {
		Singular, Kind      string
		ShortNames          []string
		Namespaced, Status  bool
		ReturnDeletedObject bool
		Columns             []string
	}
	want := map[string]desc{
		"storageclasses": {"storageclass", "StorageClass", []string{"sc"}, false, false, true,
			[]string{"Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"}},
		"csidrivers": {"csidriver", "CSIDriver", nil, false, false, true,
			[]string{"Name", "AttachRequired", "PodInfoOnMount", "StorageCapacity", "TokenRequests", "RequiresRepublish", "Modes", "Age"}},
		"csinodes": {"csinode", "CSINode", nil, false, false, true,
			[]string{"Name", "Drivers", "Age"}},
		"volumeattachments": {"volumeattachment", "VolumeAttachment", nil, false, true, true,
			[]string{"Name", "Attacher", "PV", "Node", "Attached", "Age"}},
		"csistoragecapacities": {"csistoragecapacity", "CSIStorageCapacity", nil, true, false, false,
			[]string{"Name", "Created At"}},
		"volumeattributesclasses": {"volumeattributesclass", "VolumeAttributesClass", []string{"vac"}, false, false, true,
			[]string{"Name", "DriverName", "Age"}},
	}
	got := map[string]desc{}
	for _, r := range Resources() {
		if r.GroupVersion != storagev1.SchemeGroupVersion {
			t.Errorf("%s: group version %v", r.Name, r.GroupVersion)
		}
		var cols []string
		for _, c := range r.Table.Columns {
			cols = append(cols, c.Name)
			if c.Description == "" {
				t.Errorf("%s: column %s has no description", r.Name, c.Name)
			}
		}
		got[r.Name] = desc{r.Singular, r.Kind, r.ShortNames, r.Namespaced, r.Status, r.ReturnDeletedObject, cols}

		gvk := r.GroupVersionKind()
		if _, err := scheme.Scheme.New(gvk); err != nil {
			t.Errorf("%s: %v not in client-go's scheme: %v", r.Name, gvk, err)
		}
		if got := fmt.Sprintf("%T", r.New()); got != "*v1."+r.Kind {
			t.Errorf("%s: New() = %s", r.Name, got)
		}
		if got := fmt.Sprintf("%T", r.NewList()); got != "*v1."+r.Kind+"List" {
			t.Errorf("%s: NewList() = %s", r.Name, got)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("descriptors (-want +got):\n%s", diff)
	}
}

// The server stores objects as protobuf with client-go's scheme: every kind
// must go through it unchanged.
func TestProtobufRoundTrip(t *testing.T) {
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	for _, in := range []runtime.Object{
		validStorageClass(), validCSIDriver(), validCSINode(), validVolumeAttachment(),
		validCSIStorageCapacity(), validVolumeAttributesClass(),
	} {
		gvks, _, err := scheme.Scheme.ObjectKinds(in)
		if err != nil {
			t.Fatalf("%T: %v", in, err)
		}
		in.GetObjectKind().SetGroupVersionKind(gvks[0])
		var buf bytes.Buffer
		if err := pb.Encode(in, &buf); err != nil {
			t.Fatalf("%T: encode: %v", in, err)
		}
		out, _, err := pb.Decode(buf.Bytes(), nil, nil)
		if err != nil {
			t.Fatalf("%T: decode: %v", in, err)
		}
		if diff := cmp.Diff(in, out); diff != "" {
			t.Errorf("%T round trip (-want +got):\n%s", in, diff)
		}
	}
}

// No strategy func may panic on an empty object, nor on an object of
// another type.
func TestEmptyObjects(t *testing.T) {
	ctx := context.Background()
	other := &storagev1.StorageClassList{}
	for _, r := range Resources() {
		for _, obj := range []runtime.Object{r.New(), other} {
			s := r.Strategy
			old := r.New()
			for _, f := range []func(context.Context, runtime.Object){s.PrepareForCreate} {
				if f != nil {
					f(ctx, obj)
				}
			}
			for _, f := range []func(context.Context, runtime.Object, runtime.Object){s.PrepareForUpdate, s.PrepareForStatusUpdate} {
				if f != nil && obj != other {
					f(ctx, obj, old)
				}
			}
			if s.Default != nil {
				s.Default(obj)
			}
			if s.Validate != nil {
				s.Validate(obj)
			}
			for _, f := range []func(runtime.Object, runtime.Object) field.ErrorList{s.ValidateUpdate, s.ValidateStatusUpdate} {
				if f != nil {
					f(obj, old)
				}
			}
			if s.WarningsOnCreate != nil {
				s.WarningsOnCreate(obj)
			}
			if s.WarningsOnUpdate != nil {
				s.WarningsOnUpdate(obj, old)
			}
			r.Table.Row(obj)
		}
	}
}

// Rows have one cell per column; an empty object has an unknown age.
func TestRowWidths(t *testing.T) {
	for _, r := range Resources() {
		row := r.Table.Row(r.New())
		if len(row) != len(r.Table.Columns) {
			t.Errorf("%s: %d cells for %d columns", r.Name, len(row), len(r.Table.Columns))
		}
	}
}

// An object created an hour ago shows its age as kubectl does.
func TestRowAge(t *testing.T) {
	sc := validStorageClass()
	sc.CreationTimestamp = metav1.NewTime(time.Now().Add(-61 * time.Minute))
	row := descriptor(t, "storageclasses").Table.Row(sc)
	if got := row[len(row)-1]; got != "61m" {
		t.Errorf("age %v, want 61m", got)
	}
}
