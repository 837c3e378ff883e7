package resource

import (
	"context"
	"fmt"
	"strings"

	resourcev1 "k8s.io/api/resource/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// resourceClaims: a namespaced request for devices. The spec is
// immutable; status (allocation, reservations, device status) is written
// by the scheduler and drivers — in skiff by clients only, as nothing
// allocates.
func resourceClaims() *registry.Resource {
	return &registry.Resource{
		GroupVersion: resourcev1.SchemeGroupVersion,
		Name:         "resourceclaims",
		Singular:     "resourceclaim",
		Kind:         "ResourceClaim",
		Namespaced:   true,
		New:          func() runtime.Object { return &resourcev1.ResourceClaim{} },
		NewList:      func() runtime.Object { return &resourcev1.ResourceClaimList{} },
		Strategy: registry.Strategy{
			// Upstream's claim strategy sets no metadata.generation.
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				if c, ok := obj.(*resourcev1.ResourceClaim); ok {
					c.Status = resourcev1.ResourceClaimStatus{}
				}
			},
			PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
				c, ok := obj.(*resourcev1.ResourceClaim)
				oc, ok2 := old.(*resourcev1.ResourceClaim)
				if ok && ok2 {
					c.Status = oc.Status
				}
			},
			Default: func(obj runtime.Object) {
				c, ok := obj.(*resourcev1.ResourceClaim)
				if !ok {
					return
				}
				defaultClaimSpec(&c.Spec)
				if a := c.Status.Allocation; a != nil {
					for i := range a.Devices.Results {
						defaultTolerations(a.Devices.Results[i].Tolerations)
					}
				}
			},
			Validate: func(obj runtime.Object) field.ErrorList {
				c, ok := obj.(*resourcev1.ResourceClaim)
				if !ok {
					return nil
				}
				return claimSpec(&c.Spec, field.NewPath("spec"))
			},
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				c, ok := obj.(*resourcev1.ResourceClaim)
				oc, ok2 := old.(*resourcev1.ResourceClaim)
				if !ok || !ok2 {
					return nil
				}
				// Only immutability: nothing else in the spec can change.
				return apivalidation.ValidateImmutableField(c.Spec, oc.Spec, field.NewPath("spec"))
			},
			ValidateStatusUpdate: validateClaimStatusUpdate,
			NameValidation:       registry.NameIsDNSSubdomain,
		},
		Status: true,
		Table:  claimTable,
	}
}

// resourceClaimTemplates: what a pod's claim is made from, one claim per
// pod. The spec is immutable.
func resourceClaimTemplates() *registry.Resource {
	return &registry.Resource{
		GroupVersion: resourcev1.SchemeGroupVersion,
		Name:         "resourceclaimtemplates",
		Singular:     "resourceclaimtemplate",
		Kind:         "ResourceClaimTemplate",
		Namespaced:   true,
		New:          func() runtime.Object { return &resourcev1.ResourceClaimTemplate{} },
		NewList:      func() runtime.Object { return &resourcev1.ResourceClaimTemplateList{} },
		Strategy: registry.Strategy{
			// Upstream sets no metadata.generation on templates.
			PrepareForCreate: func(context.Context, runtime.Object) {},
			PrepareForUpdate: func(context.Context, runtime.Object, runtime.Object) {},
			Default: func(obj runtime.Object) {
				if t, ok := obj.(*resourcev1.ResourceClaimTemplate); ok {
					defaultClaimSpec(&t.Spec.Spec)
				}
			},
			Validate: func(obj runtime.Object) field.ErrorList {
				t, ok := obj.(*resourcev1.ResourceClaimTemplate)
				if !ok {
					return nil
				}
				p := field.NewPath("spec")
				errs := templateMeta(&t.Spec.ObjectMeta, p.Child("metadata"))
				return append(errs, claimSpec(&t.Spec.Spec, p.Child("spec"))...)
			},
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				t, ok := obj.(*resourcev1.ResourceClaimTemplate)
				ot, ok2 := old.(*resourcev1.ResourceClaimTemplate)
				if !ok || !ok2 {
					return nil
				}
				return apivalidation.ValidateImmutableField(t.Spec, ot.Spec, field.NewPath("spec"))
			},
		},
		Table: &registry.Table{Columns: []metav1.TableColumnDefinition{registry.NameColumn, registry.AgeColumn},
			Row: func(obj runtime.Object) []interface{} {
				t, ok := obj.(*resourcev1.ResourceClaimTemplate)
				if !ok {
					return nil
				}
				return []interface{}{t.Name, registry.Age(t)}
			}},
	}
}

// templateMeta: a template's metadata holds labels and annotations for
// the claims made from it, nothing that identifies an object.
func templateMeta(m *metav1.ObjectMeta, p *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(m.Labels, p.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(m.Annotations, p.Child("annotations"))...)
	if m.Name != "" {
		errs = append(errs, field.Forbidden(p.Child("name"), "name is generated from the pod's name"))
	}
	if m.Namespace != "" {
		errs = append(errs, field.Forbidden(p.Child("namespace"), "the claim is made in the pod's namespace"))
	}
	return errs
}

// defaultClaimSpec is upstream's SetDefaults_ExactDeviceRequest and
// SetDefaults_DeviceSubRequest: allocationMode ExactCount, count 1.
func defaultClaimSpec(s *resourcev1.ResourceClaimSpec) {
	for i := range s.Devices.Requests {
		r := &s.Devices.Requests[i]
		if e := r.Exactly; e != nil {
			defaultMode(&e.AllocationMode, &e.Count)
			defaultTolerations(e.Tolerations)
		}
		for j := range r.FirstAvailable {
			sr := &r.FirstAvailable[j]
			defaultMode(&sr.AllocationMode, &sr.Count)
			defaultTolerations(sr.Tolerations)
		}
	}
}

func defaultMode(mode *resourcev1.DeviceAllocationMode, count *int64) {
	if *mode == "" {
		*mode = resourcev1.DeviceAllocationModeExactCount
	}
	if *mode == resourcev1.DeviceAllocationModeExactCount && *count == 0 {
		*count = 1
	}
}

// defaultTolerations: the operator defaults to Equal, as the API's
// +default marker says.
func defaultTolerations(ts []resourcev1.DeviceToleration) {
	for i := range ts {
		if ts[i].Operator == "" {
			ts[i].Operator = resourcev1.DeviceTolerationOpEqual
		}
	}
}

// requestNames maps each request to its subrequests (nil for a request
// with exactly), for checking references "req" and "req/sub".
type requestNames map[string]sets.Set[string]

func (r requestNames) has(ref string) bool {
	parts := strings.Split(ref, "/")
	if len(parts) > 2 {
		return false
	}
	subs, ok := r[parts[0]]
	if !ok {
		return false
	}
	return len(parts) == 1 || subs.Has(parts[1])
}

func namesOf(c *resourcev1.DeviceClaim) requestNames {
	out := requestNames{}
	for _, r := range c.Requests {
		if len(r.FirstAvailable) == 0 {
			out[r.Name] = nil
			continue
		}
		subs := sets.New[string]()
		for _, s := range r.FirstAvailable {
			subs.Insert(s.Name)
		}
		out[r.Name] = subs
	}
	return out
}

func claimSpec(s *resourcev1.ResourceClaimSpec, p *field.Path) field.ErrorList {
	dp := p.Child("devices")
	c := &s.Devices
	names := namesOf(c)
	rp := dp.Child("requests")
	errs := tooMany(len(c.Requests), resourcev1.DeviceRequestsMaxSize, rp)
	if errs == nil {
		for i, r := range c.Requests {
			errs = append(errs, deviceRequest(r, rp.Index(i))...)
		}
		errs = append(errs, uniqueNames(len(c.Requests), func(i int) string { return c.Requests[i].Name }, rp)...)
	}
	cp := dp.Child("constraints")
	if tm := tooMany(len(c.Constraints), resourcev1.DeviceConstraintsMaxSize, cp); tm != nil {
		errs = append(errs, tm...)
	} else {
		for i, con := range c.Constraints {
			errs = append(errs, deviceConstraint(con, cp.Index(i), names)...)
		}
	}
	fp := dp.Child("config")
	if tm := tooMany(len(c.Config), resourcev1.DeviceConfigMaxSize, fp); tm != nil {
		errs = append(errs, tm...)
	} else {
		for i, cfg := range c.Config {
			errs = append(errs, requestRefs(cfg.Requests, fp.Index(i).Child("requests"), names)...)
			errs = append(errs, deviceConfiguration(cfg.DeviceConfiguration, fp.Index(i))...)
		}
	}
	return errs
}

func deviceRequest(r resourcev1.DeviceRequest, p *field.Path) field.ErrorList {
	errs := dns1123Label(r.Name, p.Child("name"))
	if r.Name == "" {
		errs = field.ErrorList{field.Required(p.Child("name"), "")}
	}
	switch hasFirst, hasExact := len(r.FirstAvailable) > 0, r.Exactly != nil; {
	case !hasFirst && !hasExact:
		errs = append(errs, field.Required(p, "exactly one of `exactly` or `firstAvailable` is required"))
	case hasFirst && hasExact:
		errs = append(errs, field.Invalid(p, nil, "exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set"))
	case hasFirst:
		fp := p.Child("firstAvailable")
		if tm := tooMany(len(r.FirstAvailable), resourcev1.FirstAvailableDeviceRequestMaxSize, fp); tm != nil {
			return append(errs, tm...)
		}
		for i, s := range r.FirstAvailable {
			sp := fp.Index(i)
			errs = append(errs, dns1123Label(s.Name, sp.Child("name"))...)
			errs = append(errs, deviceClassRef(s.DeviceClassName, sp.Child("deviceClassName"))...)
			errs = append(errs, selectors(s.Selectors, sp.Child("selectors"))...)
			errs = append(errs, allocationMode(s.AllocationMode, s.Count, sp)...)
			errs = append(errs, tolerations(s.Tolerations, sp.Child("tolerations"))...)
		}
		errs = append(errs, uniqueNames(len(r.FirstAvailable), func(i int) string { return r.FirstAvailable[i].Name }, fp)...)
	default:
		ep := p.Child("exactly")
		e := r.Exactly
		errs = append(errs, deviceClassRef(e.DeviceClassName, ep.Child("deviceClassName"))...)
		errs = append(errs, selectors(e.Selectors, ep.Child("selectors"))...)
		errs = append(errs, allocationMode(e.AllocationMode, e.Count, ep)...)
		errs = append(errs, tolerations(e.Tolerations, ep.Child("tolerations"))...)
	}
	return errs
}

func deviceClassRef(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return dns1123Subdomain(name, p)
}

func allocationMode(mode resourcev1.DeviceAllocationMode, count int64, p *field.Path) field.ErrorList {
	switch mode {
	case resourcev1.DeviceAllocationModeAll:
		if count != 0 {
			return field.ErrorList{field.Invalid(p.Child("count"), count, fmt.Sprintf("must not be specified when allocationMode is '%s'", mode))}
		}
	case resourcev1.DeviceAllocationModeExactCount:
		if count <= 0 {
			return field.ErrorList{field.Invalid(p.Child("count"), count, "must be greater than zero")}
		}
	default:
		return field.ErrorList{field.NotSupported(p.Child("allocationMode"), mode,
			[]resourcev1.DeviceAllocationMode{resourcev1.DeviceAllocationModeAll, resourcev1.DeviceAllocationModeExactCount})}
	}
	return nil
}

func tolerations(ts []resourcev1.DeviceToleration, p *field.Path) field.ErrorList {
	if tm := tooMany(len(ts), resourcev1.DeviceTolerationsMaxLength, p); tm != nil {
		return tm
	}
	var errs field.ErrorList
	for i, t := range ts {
		errs = append(errs, deviceToleration(t, p.Index(i))...)
	}
	return errs
}

func deviceConstraint(c resourcev1.DeviceConstraint, p *field.Path, names requestNames) field.ErrorList {
	errs := requestRefs(c.Requests, p.Child("requests"), names)
	switch {
	case c.MatchAttribute == nil && c.DistinctAttribute == nil:
		errs = append(errs, field.Required(p, "exactly one of `matchAttribute` or `distinctAttribute` is required"))
	case c.MatchAttribute != nil && c.DistinctAttribute != nil:
		errs = append(errs, field.Invalid(p, nil, "exactly one of `matchAttribute` or `distinctAttribute` is required, but multiple fields are set"))
	case c.MatchAttribute != nil:
		errs = append(errs, fullyQualifiedName(string(*c.MatchAttribute), p.Child("matchAttribute"))...)
	default:
		errs = append(errs, fullyQualifiedName(string(*c.DistinctAttribute), p.Child("distinctAttribute"))...)
	}
	return errs
}

// fullyQualifiedName: "<domain>/<id>", the domain a DNS subdomain of at
// most 63 characters, the id a C identifier of at most 32.
func fullyQualifiedName(n string, p *field.Path) field.ErrorList {
	if n == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	domain, id, ok := strings.Cut(n, "/")
	if !ok {
		return field.ErrorList{field.Required(p.Child("domain"), "a fully qualified name must be a domain and a name separated by a slash")}
	}
	var errs field.ErrorList
	if len(domain) > resourcev1.DeviceMaxDomainLength {
		errs = append(errs, field.TooLong(p, "", resourcev1.DeviceMaxDomainLength))
	}
	errs = append(errs, dns1123Subdomain(domain, p)...)
	errs = append(errs, cIdentifier(id, p)...)
	return errs
}

func cIdentifier(id string, p *field.Path) field.ErrorList {
	if id == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if len(id) > resourcev1.DeviceMaxIDLength {
		errs = append(errs, field.TooLong(p, "", resourcev1.DeviceMaxIDLength))
	}
	for i, ch := range id {
		if !(ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || i > 0 && ch >= '0' && ch <= '9') {
			errs = append(errs, field.Invalid(p, id, "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')"))
			break
		}
	}
	return errs
}

func requestRefs(refs []string, p *field.Path, names requestNames) field.ErrorList {
	if tm := tooMany(len(refs), resourcev1.DeviceRequestsMaxSize, p); tm != nil {
		return tm
	}
	var errs field.ErrorList
	for i, ref := range refs {
		if !names.has(ref) {
			errs = append(errs, field.Invalid(p.Index(i), ref, "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'"))
		}
	}
	return append(errs, uniqueNames(len(refs), func(i int) string { return refs[i] }, p)...)
}

// validateClaimStatusUpdate: reservations name their consumer, only an
// allocated claim is reserved, and an allocation never changes once
// made (it may only be removed).
func validateClaimStatusUpdate(obj, old runtime.Object) field.ErrorList {
	c, ok := obj.(*resourcev1.ResourceClaim)
	oc, ok2 := old.(*resourcev1.ResourceClaim)
	if !ok || !ok2 {
		return nil
	}
	p := field.NewPath("status")
	st := &c.Status
	rp := p.Child("reservedFor")
	errs := tooMany(len(st.ReservedFor), resourcev1.ResourceClaimReservedForMaxSize, rp)
	if errs == nil {
		for i, ref := range st.ReservedFor {
			ip := rp.Index(i)
			if ref.Resource == "" {
				errs = append(errs, field.Required(ip.Child("resource"), ""))
			}
			if ref.Name == "" {
				errs = append(errs, field.Required(ip.Child("name"), ""))
			}
			if ref.UID == "" {
				errs = append(errs, field.Required(ip.Child("uid"), ""))
			}
		}
		errs = append(errs, uniqueNames(len(st.ReservedFor), func(i int) string { return string(st.ReservedFor[i].UID) }, rp)...)
	}
	if len(st.ReservedFor) > 0 {
		if st.Allocation == nil {
			errs = append(errs, field.Forbidden(rp, "may not be specified when `allocated` is not set"))
		} else if c.DeletionTimestamp != nil {
			oldUIDs := sets.New[types.UID]()
			for _, r := range oc.Status.ReservedFor {
				oldUIDs.Insert(r.UID)
			}
			for _, r := range st.ReservedFor {
				if !oldUIDs.Has(r.UID) {
					errs = append(errs, field.Forbidden(rp, "new entries may not be added while `deallocationRequested` or `deletionTimestamp` are set"))
					break
				}
			}
		}
	}
	ap := p.Child("allocation")
	switch {
	case oc.Status.Allocation != nil && st.Allocation != nil:
		errs = append(errs, apivalidation.ValidateImmutableField(st.Allocation, oc.Status.Allocation, ap)...)
	case st.Allocation != nil:
		errs = append(errs, allocationResult(st.Allocation, ap, namesOf(&c.Spec.Devices))...)
	}
	return errs
}

func allocationResult(a *resourcev1.AllocationResult, p *field.Path, names requestNames) field.ErrorList {
	dp := p.Child("devices")
	rp := dp.Child("results")
	errs := tooMany(len(a.Devices.Results), resourcev1.AllocationResultsMaxSize, rp)
	if errs == nil {
		for i, r := range a.Devices.Results {
			ip := rp.Index(i)
			if !names.has(r.Request) {
				errs = append(errs, field.Invalid(ip.Child("request"), r.Request, "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'"))
			}
			errs = append(errs, driverName(r.Driver, ip.Child("driver"))...)
			errs = append(errs, poolName(r.Pool, ip.Child("pool"))...)
			errs = append(errs, deviceName(r.Device, ip.Child("device"))...)
			errs = append(errs, tolerations(r.Tolerations, ip.Child("tolerations"))...)
		}
	}
	cp := dp.Child("config")
	if tm := tooMany(len(a.Devices.Config), 2*resourcev1.DeviceConfigMaxSize, cp); tm != nil {
		errs = append(errs, tm...)
	} else {
		for i, cfg := range a.Devices.Config {
			ip := cp.Index(i)
			switch cfg.Source {
			case "":
				errs = append(errs, field.Required(ip.Child("source"), ""))
			case resourcev1.AllocationConfigSourceClaim, resourcev1.AllocationConfigSourceClass:
			default:
				errs = append(errs, field.NotSupported(ip.Child("source"), cfg.Source,
					[]resourcev1.AllocationConfigSource{resourcev1.AllocationConfigSourceClaim, resourcev1.AllocationConfigSourceClass}))
			}
			errs = append(errs, requestRefs(cfg.Requests, ip.Child("requests"), names)...)
			errs = append(errs, deviceConfiguration(cfg.DeviceConfiguration, ip)...)
		}
	}
	if a.NodeSelector != nil {
		errs = append(errs, nodeSelector(a.NodeSelector, p.Child("nodeSelector"))...)
	}
	return errs
}

func deviceName(n string, p *field.Path) field.ErrorList {
	if n == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return dns1123Label(n, p)
}

// claimTable is upstream's NAME STATE AGE; the state sums up deletion,
// allocation and reservation ("allocated,reserved", "pending").
var claimTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "State", Type: "string", Description: "A summary of the current state (allocated, pending, reserved, etc.)."},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		c, ok := obj.(*resourcev1.ResourceClaim)
		if !ok {
			return nil
		}
		var states []string
		if c.DeletionTimestamp != nil {
			states = append(states, "deleted")
		}
		if c.Status.Allocation == nil {
			if c.DeletionTimestamp == nil {
				states = append(states, "pending")
			}
		} else {
			states = append(states, "allocated")
			if len(c.Status.ReservedFor) > 0 {
				states = append(states, "reserved")
			}
		}
		return []interface{}{c.Name, strings.Join(states, ","), registry.Age(c)}
	},
}
