package core

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// endpointsDeprecationWarning is the warning upstream (v1.33+) sends on
// every write of a core/v1 Endpoints object.
const endpointsDeprecationWarning = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"

// Endpoints returns the descriptor of core/v1 endpoints ("ep").
func Endpoints() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "endpoints",
		Singular:     "endpoints",
		Kind:         "Endpoints",
		ShortNames:   []string{"ep"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.Endpoints{} },
		NewList:      func() runtime.Object { return &corev1.EndpointsList{} },
		Strategy: registry.Strategy{
			Default:          defaultEndpoints,
			Validate:         validateEndpoints,
			ValidateUpdate:   func(obj, _ runtime.Object) field.ErrorList { return validateEndpoints(obj) },
			WarningsOnCreate: func(runtime.Object) []string { return []string{endpointsDeprecationWarning} },
			WarningsOnUpdate: func(_, _ runtime.Object) []string { return []string{endpointsDeprecationWarning} },
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Endpoints", Type: "string", Description: corev1.Endpoints{}.SwaggerDoc()["subsets"]},
				registry.AgeColumn,
			},
			Row: endpointsRow,
		},
	}
}

// defaultEndpoints sets each port's protocol to TCP when unset.
func defaultEndpoints(obj runtime.Object) {
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		return
	}
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// validateEndpoints checks every subset: it has addresses, each address is
// a valid, non-special IP, ports are valid and named when there are
// several.
func validateEndpoints(obj runtime.Object) field.ErrorList {
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		return metaWrongType(obj, "v1.Endpoints")
	}
	var errs field.ErrorList
	subsetsPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		p := subsetsPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j := range ss.Ports {
			errs = append(errs, validateEndpointPort(&ss.Ports[j], len(ss.Ports) > 1, p.Child("ports").Index(j))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, p *field.Path) field.ErrorList {
	errs := validation.IsValidIPForLegacyField(p.Child("ip"), a.IP, true, nil)
	if len(errs) == 0 {
		errs = append(errs, metaNonSpecialIP(a.IP, p.Child("ip"))...)
	}
	if a.Hostname != "" {
		for _, msg := range validation.IsDNS1123Label(a.Hostname) {
			errs = append(errs, field.Invalid(p.Child("hostname"), a.Hostname, msg))
		}
	}
	if a.NodeName != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*a.NodeName) {
			errs = append(errs, field.Invalid(p.Child("nodeName"), *a.NodeName, msg))
		}
	}
	return errs
}

func validateEndpointPort(port *corev1.EndpointPort, requireName bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && port.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else if port.Name != "" {
		for _, msg := range validation.IsDNS1123Label(port.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), port.Name, msg))
		}
	}
	for _, msg := range validation.IsValidPortNum(int(port.Port)) {
		errs = append(errs, field.Invalid(p.Child("port"), port.Port, msg))
	}
	if port.Protocol == "" {
		errs = append(errs, field.Required(p.Child("protocol"), ""))
	} else if !slices.Contains(serviceProtocols, string(port.Protocol)) {
		errs = append(errs, field.NotSupported(p.Child("protocol"), port.Protocol, serviceProtocols))
	}
	if port.AppProtocol != nil {
		errs = append(errs, metav1validation.ValidateLabelName(*port.AppProtocol, p.Child("appProtocol"))...)
	}
	return errs
}

// endpointsRow renders the ENDPOINTS cell as upstream does: up to three
// ip:port pairs (bare IPs for port-less subsets), then "+ N more...".
func endpointsRow(obj runtime.Object) []interface{} {
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		return []interface{}{"", "", ""}
	}
	return []interface{}{ep.Name, formatEndpointsCell(ep), registry.Age(ep)}
}

func formatEndpointsCell(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	count := 0
	add := func(s string) {
		count++
		if len(list) < max {
			list = append(list, s)
		}
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", s, count-max)
	}
	return s
}
