package resource

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/registry"
)

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func descriptor(t *testing.T, name string) *registry.Resource {
	t.Helper()
	for _, r := range Resources() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource %s", name)
	return nil
}

// Every strategy func takes any object a client can send, zero values and
// nil pointers included, without panicking.
func TestStrategiesDoNotPanic(t *testing.T) {
	ctx := context.Background()
	for _, r := range Resources() {
		s := r.Strategy
		for _, f := range []func(obj, old runtime.Object){
			func(obj, _ runtime.Object) {
				if s.PrepareForCreate != nil {
					s.PrepareForCreate(ctx, obj)
				}
			},
			func(obj, old runtime.Object) {
				if s.PrepareForUpdate != nil {
					s.PrepareForUpdate(ctx, obj, old)
				}
			},
			func(obj, _ runtime.Object) {
				if s.Default != nil {
					s.Default(obj)
				}
			},
			func(obj, _ runtime.Object) {
				if s.Validate != nil {
					s.Validate(obj)
				}
			},
			func(obj, old runtime.Object) {
				if s.ValidateUpdate != nil {
					s.ValidateUpdate(obj, old)
				}
			},
			func(obj, old runtime.Object) {
				if s.ValidateStatusUpdate != nil {
					s.ValidateStatusUpdate(obj, old)
				}
			},
			func(obj, _ runtime.Object) {
				if r.Table != nil {
					r.Table.Row(obj)
				}
				if r.Fields != nil {
					r.Fields(obj)
					r.Fields(nil)
				}
			},
		} {
			f(r.New(), r.New())
		}
	}
}

func TestValidateClaim(t *testing.T) {
	claim := func(reqs ...resourcev1.DeviceRequest) *resourcev1.ResourceClaim {
		return &resourcev1.ResourceClaim{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: reqs}}}
	}
	exact := func(name, class string) resourcev1.DeviceRequest {
		return resourcev1.DeviceRequest{Name: name, Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: class}}
	}
	withConstraint := claim(exact("a", "c"))
	withConstraint.Spec.Devices.Constraints = []resourcev1.DeviceConstraint{{Requests: []string{"b"}, MatchAttribute: ptr.To[resourcev1.FullyQualifiedName]("example.com/numa")}}
	allWithCount := claim(resourcev1.DeviceRequest{Name: "a", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "c",
		AllocationMode: resourcev1.DeviceAllocationModeAll, Count: 2}})
	subs := claim(resourcev1.DeviceRequest{Name: "a", FirstAvailable: []resourcev1.DeviceSubRequest{
		{Name: "big", DeviceClassName: "c"}, {Name: "big", DeviceClassName: "c"}}})
	badToleration := claim(resourcev1.DeviceRequest{Name: "a", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "c",
		Tolerations: []resourcev1.DeviceToleration{{Key: "k", Operator: resourcev1.DeviceTolerationOpExists, Value: "v"}}}})
	tests := []struct {
		name string
		obj  *resourcev1.ResourceClaim
		want []string
	}{
		{"valid", claim(exact("req-0", "dra.example.com")), nil},
		{"no requests", claim(), nil},
		{"no class", claim(exact("a", "")), []string{"FieldValueRequired spec.devices.requests[0].exactly.deviceClassName"}},
		{"bad request name", claim(exact("A_B", "c")), []string{"FieldValueInvalid spec.devices.requests[0].name"}},
		{"neither", claim(resourcev1.DeviceRequest{Name: "a"}), []string{"FieldValueRequired spec.devices.requests[0]"}},
		{"duplicate", claim(exact("a", "c"), exact("a", "c")), []string{"FieldValueDuplicate spec.devices.requests[1]"}},
		{"constraint names unknown request", withConstraint, []string{"FieldValueInvalid spec.devices.constraints[0].requests[0]"}},
		{"count with All", allWithCount, []string{"FieldValueInvalid spec.devices.requests[0].exactly.count"}},
		{"duplicate subrequest", subs, []string{"FieldValueDuplicate spec.devices.requests[0].firstAvailable[1]"}},
		{"Exists with value", badToleration, []string{"FieldValueInvalid spec.devices.requests[0].exactly.tolerations[0].value"}},
	}
	r := descriptor(t, "resourceclaims")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.Strategy.Default(tt.obj)
			if diff := cmp.Diff(tt.want, errFields(r.Strategy.Validate(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClaimStatus(t *testing.T) {
	r := descriptor(t, "resourceclaims")
	base := &resourcev1.ResourceClaim{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{
		{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "c"}}}}}}
	alloc := func(device string) *resourcev1.AllocationResult {
		return &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{Results: []resourcev1.DeviceRequestAllocationResult{
			{Request: "gpu", Driver: "dra.example.com", Pool: "p", Device: device}}}}
	}
	with := func(a *resourcev1.AllocationResult, reserved ...resourcev1.ResourceClaimConsumerReference) *resourcev1.ResourceClaim {
		c := base.DeepCopy()
		c.Status.Allocation = a
		c.Status.ReservedFor = reserved
		return c
	}
	pod := resourcev1.ResourceClaimConsumerReference{Resource: "pods", Name: "p", UID: "u1"}
	tests := []struct {
		name     string
		obj, old *resourcev1.ResourceClaim
		want     []string
	}{
		{"empty allocation", with(&resourcev1.AllocationResult{}), base, nil},
		{"allocate", with(alloc("gpu-0")), base, nil},
		{"reserve", with(alloc("gpu-0"), pod), with(alloc("gpu-0")), nil},
		{"reserve unallocated", with(nil, pod), base, []string{"FieldValueForbidden status.reservedFor"}},
		{"change allocation", with(alloc("gpu-1")), with(alloc("gpu-0")), []string{"FieldValueInvalid status.allocation"}},
		{"deallocate", base, with(alloc("gpu-0")), nil},
		{"unknown request", with(&resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{Results: []resourcev1.DeviceRequestAllocationResult{
			{Request: "cpu", Driver: "dra.example.com", Pool: "p", Device: "d"}}}}), base,
			[]string{"FieldValueInvalid status.allocation.devices.results[0].request"}},
		{"duplicate consumer", with(alloc("gpu-0"), pod, pod), with(alloc("gpu-0")), []string{"FieldValueDuplicate status.reservedFor[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(r.Strategy.ValidateStatusUpdate(tt.obj, tt.old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateSlice(t *testing.T) {
	slice := func(mut func(*resourcev1.ResourceSliceSpec)) *resourcev1.ResourceSlice {
		s := &resourcev1.ResourceSlice{Spec: resourcev1.ResourceSliceSpec{Driver: "dra.example.com", NodeName: ptr.To("n"),
			Pool: resourcev1.ResourcePool{Name: "pool", ResourceSliceCount: 1}}}
		mut(&s.Spec)
		return s
	}
	tests := []struct {
		name string
		obj  *resourcev1.ResourceSlice
		want []string
	}{
		{"valid", slice(func(*resourcev1.ResourceSliceSpec) {}), nil},
		{"no driver", slice(func(s *resourcev1.ResourceSliceSpec) { s.Driver = "" }), []string{"FieldValueRequired spec.driver"}},
		{"two node selections", slice(func(s *resourcev1.ResourceSliceSpec) { s.AllNodes = ptr.To(true) }), []string{"FieldValueInvalid spec"}},
		{"allNodes false", slice(func(s *resourcev1.ResourceSliceSpec) { s.NodeName = nil; s.AllNodes = ptr.To(false) }),
			[]string{"FieldValueInvalid spec.allNodes", "FieldValueRequired spec"}},
		{"zero slice count", slice(func(s *resourcev1.ResourceSliceSpec) { s.Pool.ResourceSliceCount = 0 }), []string{"FieldValueInvalid spec.pool.resourceSliceCount"}},
		{"pool with slashes", slice(func(s *resourcev1.ResourceSliceSpec) { s.Pool.Name = "a/b.c" }), nil},
		{"duplicate devices", slice(func(s *resourcev1.ResourceSliceSpec) { s.Devices = []resourcev1.Device{{Name: "d"}, {Name: "d"}} }),
			[]string{"FieldValueDuplicate spec.devices[1]"}},
		{"device node without per-device selection", slice(func(s *resourcev1.ResourceSliceSpec) {
			s.Devices = []resourcev1.Device{{Name: "d", NodeName: ptr.To("n")}}
		}),
			[]string{"FieldValueInvalid spec.devices[0]"}},
		{"attribute without a value", slice(func(s *resourcev1.ResourceSliceSpec) {
			s.Devices = []resourcev1.Device{{Name: "d", Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{"model": {}}}}
		}), []string{"FieldValueRequired spec.devices[0].attributes[model]"}},
		{"selector with two terms", slice(func(s *resourcev1.ResourceSliceSpec) {
			s.NodeName = nil
			term := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "k", Operator: corev1.NodeSelectorOpExists}}}
			s.NodeSelector = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term, term}}
		}), []string{"FieldValueInvalid spec.nodeSelector.nodeSelectorTerms"}},
	}
	r := descriptor(t, "resourceslices")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(r.Strategy.Validate(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	old := slice(func(*resourcev1.ResourceSliceSpec) {})
	moved := slice(func(s *resourcev1.ResourceSliceSpec) { s.NodeName = ptr.To("other") })
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.nodeName"}, errFields(r.Strategy.ValidateUpdate(moved, old))); diff != "" {
		t.Errorf("moved slice (-want +got):\n%s", diff)
	}
}

func TestDeviceClassAndTaintRule(t *testing.T) {
	dc := descriptor(t, "deviceclasses")
	class := &resourcev1.DeviceClass{Spec: resourcev1.DeviceClassSpec{
		Selectors:            []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: " "}}},
		Config:               []resourcev1.DeviceClassConfiguration{{DeviceConfiguration: resourcev1.DeviceConfiguration{Opaque: &resourcev1.OpaqueDeviceConfiguration{Driver: "d.example.com", Parameters: runtime.RawExtension{Raw: []byte(`[1]`)}}}}},
		ExtendedResourceName: ptr.To("gpu"),
	}}
	want := []string{"FieldValueRequired spec.selectors[0].cel.expression", "FieldValueInvalid spec.config[0].opaque.parameters", "FieldValueInvalid spec.extendedResourceName"}
	if diff := cmp.Diff(want, errFields(dc.Strategy.Validate(class))); diff != "" {
		t.Errorf("class (-want +got):\n%s", diff)
	}

	tr := descriptor(t, "devicetaintrules")
	rule := &resourcev1.DeviceTaintRule{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Spec: resourcev1.DeviceTaintRuleSpec{
		DeviceSelector: &resourcev1.DeviceTaintSelector{Driver: ptr.To("Bad_Driver"), Device: ptr.To("d")},
		Taint:          resourcev1.DeviceTaint{Key: "", Effect: "Later"},
	}}
	want = []string{"FieldValueInvalid spec.deviceSelector.driver", "FieldValueInvalid spec.taint.key", "FieldValueInvalid spec.taint.key", "FieldValueNotSupported spec.taint.effect"}
	if diff := cmp.Diff(want, errFields(tr.Strategy.Validate(rule))); diff != "" {
		t.Errorf("taint rule (-want +got):\n%s", diff)
	}

	// timeAdded is defaulted, and moves when the effect changes unless
	// the client moved it.
	old := &resourcev1.DeviceTaintRule{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Spec: resourcev1.DeviceTaintRuleSpec{
		Taint: resourcev1.DeviceTaint{Key: "k", Effect: resourcev1.DeviceTaintEffectNone}}}
	tr.Strategy.Default(old)
	if old.Spec.Taint.TimeAdded == nil {
		t.Fatal("timeAdded not defaulted")
	}
	old.Spec.Taint.TimeAdded = &metav1.Time{Time: time.Now().Add(-time.Hour).Truncate(time.Second)}
	upd := old.DeepCopy()
	upd.Spec.Taint.Effect = resourcev1.DeviceTaintEffectNoExecute
	tr.Strategy.PrepareForUpdate(context.Background(), upd, old)
	if upd.Spec.Taint.TimeAdded.Equal(old.Spec.Taint.TimeAdded) || upd.Generation != 2 {
		t.Errorf("effect change: timeAdded %v (old %v), generation %d", upd.Spec.Taint.TimeAdded, old.Spec.Taint.TimeAdded, upd.Generation)
	}
	set := old.DeepCopy()
	set.Spec.Taint.Effect = resourcev1.DeviceTaintEffectNoExecute
	set.Spec.Taint.TimeAdded = &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tr.Strategy.PrepareForUpdate(context.Background(), set, old)
	if !set.Spec.Taint.TimeAdded.Time.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("client's timeAdded replaced: %v", set.Spec.Taint.TimeAdded)
	}
}
