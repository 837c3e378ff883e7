package resource

import (
	"fmt"
	"strings"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// resourceSlices: the devices one driver publishes for one pool, on one
// node or a set of nodes. Cluster-scoped, selectable by spec.nodeName,
// spec.driver and spec.pool.name.
func resourceSlices() *registry.Resource {
	return &registry.Resource{
		GroupVersion: resourcev1.SchemeGroupVersion,
		Name:         "resourceslices",
		Singular:     "resourceslice",
		Kind:         "ResourceSlice",
		Namespaced:   false,
		New:          func() runtime.Object { return &resourcev1.ResourceSlice{} },
		NewList:      func() runtime.Object { return &resourcev1.ResourceSliceList{} },
		Strategy: registry.Strategy{
			Default: func(obj runtime.Object) {
				s, ok := obj.(*resourcev1.ResourceSlice)
				if !ok {
					return
				}
				for i := range s.Spec.Devices {
					for j := range s.Spec.Devices[i].Taints {
						defaultTaint(&s.Spec.Devices[i].Taints[j])
					}
				}
			},
			Validate: func(obj runtime.Object) field.ErrorList {
				s, ok := obj.(*resourcev1.ResourceSlice)
				if !ok {
					return nil
				}
				return sliceSpec(&s.Spec, nil, field.NewPath("spec"))
			},
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				s, ok := obj.(*resourcev1.ResourceSlice)
				os, ok2 := old.(*resourcev1.ResourceSlice)
				if !ok || !ok2 {
					return nil
				}
				return sliceSpec(&s.Spec, &os.Spec, field.NewPath("spec"))
			},
		},
		Table: sliceTable,
		Fields: func(obj runtime.Object) fields.Set {
			s, _ := obj.(*resourcev1.ResourceSlice)
			if s == nil {
				return fields.Set{"metadata.name": "", "spec.nodeName": "", "spec.driver": "", "spec.pool.name": ""}
			}
			node := ""
			if s.Spec.NodeName != nil {
				node = *s.Spec.NodeName
			}
			return fields.Set{"metadata.name": s.Name, "spec.nodeName": node, "spec.driver": s.Spec.Driver, "spec.pool.name": s.Spec.Pool.Name}
		},
	}
}

// defaultTaint is upstream's SetDefaults_DeviceTaint: a taint without
// timeAdded was added now (to the second, which is what survives
// encoding).
func defaultTaint(t *resourcev1.DeviceTaint) {
	if t.TimeAdded == nil {
		t.TimeAdded = &metav1.Time{Time: time.Now().Truncate(time.Second)}
	}
}

func sliceSpec(s, old *resourcev1.ResourceSliceSpec, p *field.Path) field.ErrorList {
	errs := driverName(s.Driver, p.Child("driver"))
	pp := p.Child("pool")
	errs = append(errs, poolName(s.Pool.Name, pp.Child("name"))...)
	if s.Pool.ResourceSliceCount <= 0 {
		errs = append(errs, field.Invalid(pp.Child("resourceSliceCount"), s.Pool.ResourceSliceCount, "must be greater than zero"))
	}
	if s.Pool.Generation < 0 {
		errs = append(errs, field.Invalid(pp.Child("generation"), s.Pool.Generation, "must be greater than or equal to zero"))
	}
	if old != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(s.Pool.Name, old.Pool.Name, pp.Child("name"))...)
		errs = append(errs, apivalidation.ValidateImmutableField(s.Driver, old.Driver, p.Child("driver"))...)
		errs = append(errs, apivalidation.ValidateImmutableField(s.NodeName, old.NodeName, p.Child("nodeName"))...)
	}

	var set []string
	if s.NodeName != nil {
		if *s.NodeName != "" {
			set = append(set, "`nodeName`")
			errs = append(errs, dns1123Subdomain(*s.NodeName, p.Child("nodeName"))...)
		} else {
			errs = append(errs, field.Invalid(p.Child("nodeName"), *s.NodeName, "must be either unset or set to a non-empty string"))
		}
	}
	if s.NodeSelector != nil {
		set = append(set, "`nodeSelector`")
		errs = append(errs, nodeSelector(s.NodeSelector, p.Child("nodeSelector"))...)
		if len(s.NodeSelector.NodeSelectorTerms) != 1 {
			errs = append(errs, field.Invalid(p.Child("nodeSelector", "nodeSelectorTerms"), s.NodeSelector.NodeSelectorTerms, "must have exactly one node selector term"))
		}
	}
	if s.AllNodes != nil {
		if *s.AllNodes {
			set = append(set, "`allNodes`")
		} else {
			errs = append(errs, field.Invalid(p.Child("allNodes"), *s.AllNodes, "must be either unset or set to true"))
		}
	}
	if s.PerDeviceNodeSelection != nil {
		if *s.PerDeviceNodeSelection {
			set = append(set, "`perDeviceNodeSelection`")
		} else {
			errs = append(errs, field.Invalid(p.Child("perDeviceNodeSelection"), *s.PerDeviceNodeSelection, "must be either unset or set to true"))
		}
	}
	switch len(set) {
	case 0:
		errs = append(errs, field.Required(p, "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"))
	case 1:
	default:
		errs = append(errs, field.Invalid(p, fmt.Sprintf("{%s}", strings.Join(set, ", ")),
			"exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set"))
	}
	if s.SharedCounters != nil && s.Devices != nil {
		errs = append(errs, field.Invalid(p, "", "only one of `sharedCounters` or `devices` is allowed"))
	}

	dp := p.Child("devices")
	limit := resourcev1.ResourceSliceMaxDevices
	for _, d := range s.Devices {
		if len(d.Taints) > 0 || len(d.ConsumesCounters) > 0 {
			limit = resourcev1.ResourceSliceMaxDevicesWithAdvancedFeatures
		}
	}
	if tm := tooMany(len(s.Devices), limit, dp); tm != nil {
		errs = append(errs, tm...)
	} else {
		for i, d := range s.Devices {
			var oldDevice *resourcev1.Device
			if old != nil {
				for j := range old.Devices {
					if old.Devices[j].Name == d.Name {
						oldDevice = &old.Devices[j]
					}
				}
			}
			errs = append(errs, device(d, oldDevice, dp.Index(i), s.PerDeviceNodeSelection)...)
		}
		errs = append(errs, uniqueNames(len(s.Devices), func(i int) string { return s.Devices[i].Name }, dp)...)
	}
	cp := p.Child("sharedCounters")
	if tm := tooMany(len(s.SharedCounters), resourcev1.ResourceSliceMaxCounterSets, cp); tm != nil {
		errs = append(errs, tm...)
	} else {
		for i, cs := range s.SharedCounters {
			errs = append(errs, dns1123Label(cs.Name, cp.Index(i).Child("name"))...)
			if len(cs.Counters) == 0 {
				errs = append(errs, field.Required(cp.Index(i).Child("counters"), ""))
			}
		}
		errs = append(errs, uniqueNames(len(s.SharedCounters), func(i int) string { return s.SharedCounters[i].Name }, cp)...)
	}
	return errs
}

// device: a DNS-label name, attributes and capacities with qualified
// names (at most 32 together), at most one value per attribute, and a
// node selection only when the slice delegates it to devices.
func device(d resourcev1.Device, old *resourcev1.Device, p *field.Path, perDevice *bool) field.ErrorList {
	errs := deviceName(d.Name, p.Child("name"))
	if n := len(d.Attributes) + len(d.Capacity); n > resourcev1.ResourceSliceMaxAttributesAndCapacitiesPerDevice {
		errs = append(errs, field.Invalid(p, n, fmt.Sprintf("the total number of attributes and capacities must not exceed %d", resourcev1.ResourceSliceMaxAttributesAndCapacitiesPerDevice)))
	}
	for name, a := range d.Attributes {
		ap := p.Child("attributes").Key(string(name))
		errs = append(errs, qualifiedName(string(name), ap)...)
		n := 0
		for _, set := range []bool{a.IntValue != nil, a.BoolValue != nil, a.StringValue != nil, a.VersionValue != nil,
			a.IntValues != nil, a.BoolValues != nil, a.StringValues != nil, a.VersionValues != nil} {
			if set {
				n++
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Required(ap, "exactly one value must be specified"))
		case n > 1:
			errs = append(errs, field.Invalid(ap, a, "exactly one value must be specified"))
		}
		if a.StringValue != nil && len(*a.StringValue) > resourcev1.DeviceAttributeMaxValueLength {
			errs = append(errs, field.TooLong(ap.Child("string"), "", resourcev1.DeviceAttributeMaxValueLength))
		}
		if a.VersionValue != nil && len(*a.VersionValue) > resourcev1.DeviceAttributeMaxValueLength {
			errs = append(errs, field.TooLong(ap.Child("version"), "", resourcev1.DeviceAttributeMaxValueLength))
		}
	}
	for name := range d.Capacity {
		errs = append(errs, qualifiedName(string(name), p.Child("capacity").Key(string(name)))...)
	}
	tp := p.Child("taints")
	if tm := tooMany(len(d.Taints), resourcev1.DeviceTaintsMaxLength, tp); tm != nil {
		errs = append(errs, tm...)
	} else {
		for i, t := range d.Taints {
			var ot *resourcev1.DeviceTaint
			if old != nil {
				for j := range old.Taints {
					if old.Taints[j].Key == t.Key {
						ot = &old.Taints[j]
					}
				}
			}
			errs = append(errs, deviceTaint(t, ot, tp.Index(i))...)
		}
	}
	perDeviceSet := d.NodeName != nil || d.NodeSelector != nil || d.AllNodes != nil
	if perDevice != nil && *perDevice {
		n := 0
		if d.NodeName != nil {
			n++
			if *d.NodeName == "" {
				errs = append(errs, field.Invalid(p.Child("nodeName"), *d.NodeName, "must not be empty"))
			} else {
				errs = append(errs, dns1123Subdomain(*d.NodeName, p.Child("nodeName"))...)
			}
		}
		if d.NodeSelector != nil {
			n++
			errs = append(errs, nodeSelector(d.NodeSelector, p.Child("nodeSelector"))...)
		}
		if d.AllNodes != nil {
			n++
			if !*d.AllNodes {
				errs = append(errs, field.Invalid(p.Child("allNodes"), *d.AllNodes, "must be either unset or set to true"))
			}
		}
		if n != 1 {
			errs = append(errs, field.Invalid(p, nil, "exactly one of `nodeName`, `nodeSelector`, or `allNodes` is required when `perDeviceNodeSelection` is set to true in the ResourceSlice spec"))
		}
	} else if perDeviceSet {
		errs = append(errs, field.Invalid(p, nil, "`nodeName`, `nodeSelector` and `allNodes` can only be set if `perDeviceNodeSelection` is set to true in the ResourceSlice spec"))
	}
	return errs
}

// qualifiedName: a C identifier, optionally prefixed with a DNS
// subdomain and "/" ("gpu.example.com/memory").
func qualifiedName(n string, p *field.Path) field.ErrorList {
	if n == "" {
		return field.ErrorList{field.Required(p, "name required")}
	}
	domain, id, ok := strings.Cut(n, "/")
	if !ok {
		return cIdentifier(n, p)
	}
	var errs field.ErrorList
	if len(domain) > resourcev1.DeviceMaxDomainLength {
		errs = append(errs, field.TooLong(p, "", resourcev1.DeviceMaxDomainLength))
	}
	errs = append(errs, dns1123Subdomain(domain, p)...)
	return append(errs, cIdentifier(id, p)...)
}

var sliceTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Node", Type: "string", Description: resourcev1.ResourceSliceSpec{}.SwaggerDoc()["nodeName"]},
		{Name: "Driver", Type: "string", Description: resourcev1.ResourceSliceSpec{}.SwaggerDoc()["driver"]},
		{Name: "Pool", Type: "string", Description: resourcev1.ResourcePool{}.SwaggerDoc()["name"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		s, ok := obj.(*resourcev1.ResourceSlice)
		if !ok {
			return nil
		}
		node := ""
		if s.Spec.NodeName != nil {
			node = *s.Spec.NodeName
		}
		return []interface{}{s.Name, node, s.Spec.Driver, s.Spec.Pool.Name, registry.Age(s)}
	},
}
