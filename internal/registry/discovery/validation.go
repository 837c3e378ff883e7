package discovery

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Upstream's limits on a slice.
const (
	maxEndpoints      = 1000
	maxAddresses      = 100
	maxPorts          = 20000
	maxTopologyLabels = 16
	maxZoneHints      = 8
	maxNodeHints      = 8
)

var (
	addressTypes  = []string{string(discoveryv1.AddressTypeFQDN), string(discoveryv1.AddressTypeIPv4), string(discoveryv1.AddressTypeIPv6)}
	portProtocols = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}
)

// validateEndpointSlice checks a slice; with old set (an update) the
// address type may not change, and addresses already stored are accepted
// even when today's stricter IP parsing would reject them.
func validateEndpointSlice(obj, old runtime.Object) field.ErrorList {
	eps, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	p := field.NewPath("addressType")
	switch {
	case eps.AddressType == "":
		errs = append(errs, field.Required(p, ""))
	case !contains(addressTypes, string(eps.AddressType)):
		errs = append(errs, field.NotSupported(p, eps.AddressType, addressTypes))
	}
	var oldIPs []string
	if oeps, ok := old.(*discoveryv1.EndpointSlice); ok && oeps != nil {
		if eps.AddressType != oeps.AddressType {
			errs = append(errs, field.Invalid(p, eps.AddressType, "field is immutable"))
		}
		for _, ep := range oeps.Endpoints {
			oldIPs = append(oldIPs, ep.Addresses...)
		}
	}
	errs = append(errs, validateEndpoints(eps.Endpoints, eps.AddressType, oldIPs, field.NewPath("endpoints"))...)
	errs = append(errs, validatePorts(eps.Ports, field.NewPath("ports"))...)
	return errs
}

func validateEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, oldIPs []string, p *field.Path) field.ErrorList {
	if len(endpoints) > maxEndpoints {
		return field.ErrorList{field.TooMany(p, len(endpoints), maxEndpoints)}
	}
	var errs field.ErrorList
	for i, ep := range endpoints {
		ip := p.Index(i)
		ap := ip.Child("addresses")
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(ap, "must contain at least 1 address"))
		} else if len(ep.Addresses) > maxAddresses {
			errs = append(errs, field.TooMany(ap, len(ep.Addresses), maxAddresses))
		}
		for j, addr := range ep.Addresses {
			errs = append(errs, validateAddress(addr, addrType, oldIPs, ap.Index(j))...)
		}
		if ep.NodeName != nil {
			for _, msg := range apivalidation.NameIsDNSSubdomain(*ep.NodeName, false) {
				errs = append(errs, field.Invalid(ip.Child("nodeName"), *ep.NodeName, msg))
			}
		}
		tp := ip.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxTopologyLabels {
			errs = append(errs, field.TooMany(tp, len(ep.DeprecatedTopology), maxTopologyLabels))
		}
		errs = append(errs, metav1validation.ValidateLabels(ep.DeprecatedTopology, tp)...)
		if ep.Hostname != nil {
			for _, msg := range validation.IsDNS1123Label(*ep.Hostname) {
				errs = append(errs, field.Invalid(ip.Child("hostname"), *ep.Hostname, msg))
			}
		}
		if ep.Hints != nil {
			errs = append(errs, validateHints(ep.Hints, ip.Child("hints"))...)
		}
	}
	return errs
}

// validateAddress checks one address for the slice's type. IPs must be of
// the slice's family and not unspecified, loopback or link-local: a proxy
// must never forward a Service to them. Unknown types are reported once on
// addressType, not per address.
func validateAddress(addr string, addrType discoveryv1.AddressType, oldIPs []string, p *field.Path) field.ErrorList {
	switch addrType {
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(p, addr)
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
	default:
		return nil
	}
	if errs := validation.IsValidIPForLegacyField(p, addr, true, oldIPs); len(errs) != 0 {
		return errs
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil // an old value accepted above
	}
	if addrType == discoveryv1.AddressTypeIPv4 && !ip.Is4() {
		return field.ErrorList{field.Invalid(p, addr, "must be a valid IPv4 address")}
	}
	if addrType == discoveryv1.AddressTypeIPv6 && !ip.Is6() {
		return field.ErrorList{field.Invalid(p, addr, "must be a valid IPv6 address")}
	}
	switch {
	case ip.IsUnspecified():
		return field.ErrorList{field.Invalid(p, addr, fmt.Sprintf("may not be unspecified (%v)", addr))}
	case ip.IsLoopback():
		return field.ErrorList{field.Invalid(p, addr, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case ip.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(p, addr, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case ip.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(p, addr, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}

func validateHints(h *discoveryv1.EndpointHints, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	zp := p.Child("forZones")
	if len(h.ForZones) > maxZoneHints {
		errs = append(errs, field.TooMany(zp, len(h.ForZones), maxZoneHints))
	} else {
		seen := map[string]bool{}
		for i, z := range h.ForZones {
			np := zp.Index(i).Child("name")
			if seen[z.Name] {
				errs = append(errs, field.Duplicate(np, z.Name))
			}
			seen[z.Name] = true
			for _, msg := range content.IsLabelValue(z.Name) {
				errs = append(errs, field.Invalid(np, z.Name, msg))
			}
		}
	}
	fp := p.Child("forNodes")
	if len(h.ForNodes) > maxNodeHints {
		errs = append(errs, field.TooMany(fp, len(h.ForNodes), maxNodeHints))
	} else {
		seen := map[string]bool{}
		for i, n := range h.ForNodes {
			np := fp.Index(i).Child("name")
			if seen[n.Name] {
				errs = append(errs, field.Duplicate(np, n.Name))
			}
			seen[n.Name] = true
			for _, msg := range apivalidation.NameIsDNSSubdomain(n.Name, false) {
				errs = append(errs, field.Invalid(np, n.Name, msg))
			}
		}
	}
	return errs
}

// validatePorts: unique DNS-label names (empty allowed once), a supported
// protocol, and an appProtocol that is a qualified name. As upstream, the
// port number itself is not range-checked.
func validatePorts(ports []discoveryv1.EndpointPort, p *field.Path) field.ErrorList {
	if len(ports) > maxPorts {
		return field.ErrorList{field.TooMany(p, len(ports), maxPorts)}
	}
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, port := range ports {
		ip := p.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != "" {
			for _, msg := range validation.IsDNS1123Label(name) {
				errs = append(errs, field.Invalid(ip.Child("name"), name, msg))
			}
		}
		if seen[name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), name))
		}
		seen[name] = true
		switch {
		case port.Protocol == nil:
			errs = append(errs, field.Required(ip.Child("protocol"), ""))
		case !contains(portProtocols, string(*port.Protocol)):
			errs = append(errs, field.NotSupported(ip.Child("protocol"), *port.Protocol, portProtocols))
		}
		if port.AppProtocol != nil {
			for _, msg := range content.IsLabelKey(*port.AppProtocol) {
				errs = append(errs, field.Invalid(ip.Child("appProtocol"), *port.AppProtocol, msg))
			}
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
