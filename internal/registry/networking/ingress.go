package networking

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// ingressClassAnnotation is the class annotation that came before
// spec.ingressClassName; upstream still honours it and warns about it.
const ingressClassAnnotation = "kubernetes.io/ingress.class"

var (
	// invalidPathSequences and invalidPathSuffixes may not appear in an
	// Exact or Prefix path (they would match differently in different
	// controllers).
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
	supportedPathTypes   = []string{string(networkingv1.PathTypeExact), string(networkingv1.PathTypeImplementationSpecific), string(networkingv1.PathTypePrefix)}
)

func ingresses() *registry.Resource {
	return &registry.Resource{
		GroupVersion: networkingv1.SchemeGroupVersion,
		Name:         "ingresses",
		Singular:     "ingress",
		Kind:         "Ingress",
		ShortNames:   []string{"ing"},
		Namespaced:   true,
		New:          func() runtime.Object { return &networkingv1.Ingress{} },
		NewList:      func() runtime.Object { return &networkingv1.IngressList{} },
		Status:       true,
		Strategy: registry.Strategy{
			Validate:             validateIngressCreate,
			ValidateUpdate:       validateIngressUpdate,
			ValidateStatusUpdate: validateIngressStatusUpdate,
			WarningsOnCreate:     ingressWarnings,
		},
		Table: ingressTable,
	}
}

// ingressOptions relax validation for an update of an object that was
// valid under older, looser rules, as upstream does: what was stored
// stays writable.
type ingressOptions struct {
	allowInvalidSecretName       bool
	allowInvalidWildcardHostRule bool
}

func validateIngressCreate(obj runtime.Object) field.ErrorList {
	ing, ok := obj.(*networkingv1.Ingress)
	if !ok {
		return nil
	}
	errs := validateIngressSpec(&ing.Spec, field.NewPath("spec"), ingressOptions{})
	if v, set := ing.Annotations[ingressClassAnnotation]; set && ing.Spec.IngressClassName != nil && v != *ing.Spec.IngressClassName {
		errs = append(errs, field.Invalid(field.NewPath("annotations").Child(ingressClassAnnotation), v,
			"must match `ingressClassName` when both are specified"))
	}
	return errs
}

func validateIngressUpdate(obj, old runtime.Object) field.ErrorList {
	ing, ok := obj.(*networkingv1.Ingress)
	oing, ok2 := old.(*networkingv1.Ingress)
	if !ok || !ok2 {
		return nil
	}
	opts := ingressOptions{}
	for _, tls := range oing.Spec.TLS {
		if len(validateTLSSecretName(tls.SecretName)) > 0 {
			opts.allowInvalidSecretName = true
		}
	}
	for _, r := range oing.Spec.Rules {
		if strings.Contains(r.Host, "*") && len(validateIngressRuleValue(&r.IngressRuleValue, nil)) > 0 {
			opts.allowInvalidWildcardHostRule = true
		}
	}
	return validateIngressSpec(&ing.Spec, field.NewPath("spec"), opts)
}

func validateIngressSpec(spec *networkingv1.IngressSpec, p *field.Path, opts ingressOptions) field.ErrorList {
	var errs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(p, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(spec.DefaultBackend, p.Child("defaultBackend"))...)
	}
	for i := range spec.Rules {
		errs = append(errs, validateIngressRule(&spec.Rules[i], p.Child("rules").Index(i), opts)...)
	}
	for i, tls := range spec.TLS {
		tp := p.Child("tls").Index(i)
		for j, host := range tls.Hosts {
			errs = append(errs, validateHost(host, tp.Child("hosts").Index(j), false)...)
		}
		if !opts.allowInvalidSecretName {
			for _, msg := range validateTLSSecretName(tls.SecretName) {
				errs = append(errs, field.Invalid(tp.Child("secretName"), tls.SecretName, msg))
			}
		}
	}
	if spec.IngressClassName != nil {
		for _, msg := range registry.NameIsDNSSubdomain(*spec.IngressClassName, false) {
			errs = append(errs, field.Invalid(p.Child("ingressClassName"), *spec.IngressClassName, msg))
		}
	}
	return errs
}

// validateHost checks a rule's or a TLS entry's host: a DNS subdomain, or a
// wildcard one ("*.example.com"); a rule's host may not be an IP.
func validateHost(host string, p *field.Path, notIP bool) field.ErrorList {
	var errs field.ErrorList
	if notIP {
		if _, err := netip.ParseAddr(host); err == nil {
			errs = append(errs, field.Invalid(p, host, "must be a DNS name, not an IP address"))
		}
	}
	check := validation.IsDNS1123Subdomain
	if strings.Contains(host, "*") {
		check = validation.IsWildcardDNS1123Subdomain
	}
	for _, msg := range check(host) {
		errs = append(errs, field.Invalid(p, host, msg))
	}
	return errs
}

func validateIngressRule(r *networkingv1.IngressRule, p *field.Path, opts ingressOptions) field.ErrorList {
	var errs field.ErrorList
	if r.Host != "" {
		errs = append(errs, validateHost(r.Host, p.Child("host"), true)...)
	}
	if !strings.Contains(r.Host, "*") || !opts.allowInvalidWildcardHostRule {
		errs = append(errs, validateIngressRuleValue(&r.IngressRuleValue, p)...)
	}
	return errs
}

func validateIngressRuleValue(v *networkingv1.IngressRuleValue, p *field.Path) field.ErrorList {
	if v.HTTP == nil {
		return nil
	}
	hp := p.Child("http")
	var errs field.ErrorList
	if len(v.HTTP.Paths) == 0 {
		errs = append(errs, field.Required(hp.Child("paths"), ""))
	}
	for i := range v.HTTP.Paths {
		errs = append(errs, validateHTTPIngressPath(&v.HTTP.Paths[i], hp.Child("paths").Index(i))...)
	}
	return errs
}

func validateHTTPIngressPath(path *networkingv1.HTTPIngressPath, p *field.Path) field.ErrorList {
	if path.PathType == nil {
		return field.ErrorList{field.Required(p.Child("pathType"), "pathType must be specified")}
	}
	var errs field.ErrorList
	switch *path.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(path.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), path.Path, "must be an absolute path"))
		}
		for _, seq := range invalidPathSequences {
			if strings.Contains(path.Path, seq) {
				errs = append(errs, field.Invalid(p.Child("path"), path.Path, fmt.Sprintf("must not contain '%s'", seq)))
			}
		}
		for _, suffix := range invalidPathSuffixes {
			if strings.HasSuffix(path.Path, suffix) {
				errs = append(errs, field.Invalid(p.Child("path"), path.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if path.Path != "" && !strings.HasPrefix(path.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), path.Path, "must be an absolute path"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("pathType"), *path.PathType, supportedPathTypes))
	}
	return append(errs, validateIngressBackend(&path.Backend, p.Child("backend"))...)
}

// validateIngressBackend: exactly one of a service (a DNS-label name and a
// port name or number) or a typed resource reference.
func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(p, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		r, rp := b.Resource, p.Child("resource")
		if r.APIGroup != nil {
			for _, msg := range validation.IsDNS1123Subdomain(*r.APIGroup) {
				errs = append(errs, field.Invalid(rp.Child("apiGroup"), *r.APIGroup, msg))
			}
		}
		errs = append(errs, validatePathSegment(r.Kind, rp.Child("kind"))...)
		errs = append(errs, validatePathSegment(r.Name, rp.Child("name"))...)
	case b.Service != nil:
		s := b.Service
		if s.Name == "" {
			errs = append(errs, field.Required(p.Child("service", "name"), ""))
		} else {
			// Upstream's RelaxedServiceNameValidation (GA in 1.37): a
			// DNS-1123 label, where older releases wanted DNS-1035.
			for _, msg := range registry.NameIsDNSLabel(s.Name, false) {
				errs = append(errs, field.Invalid(p.Child("service", "name"), s.Name, msg))
			}
		}
		hasName, hasNumber := s.Port.Name != "", s.Port.Number != 0
		switch {
		case hasName && hasNumber:
			errs = append(errs, field.Invalid(p, "", "cannot set both port name & port number"))
		case hasName:
			for _, msg := range validation.IsValidPortName(s.Port.Name) {
				errs = append(errs, field.Invalid(p.Child("service", "port", "name"), s.Port.Name, msg))
			}
		case hasNumber:
			for _, msg := range validation.IsValidPortNum(int(s.Port.Number)) {
				errs = append(errs, field.Invalid(p.Child("service", "port", "number"), s.Port.Number, msg))
			}
		default:
			errs = append(errs, field.Required(p, "port name or number is required"))
		}
	default:
		errs = append(errs, field.Invalid(p, "", "resource or service backend is required"))
	}
	return errs
}

// validatePathSegment: required, and usable as one segment of a URL path.
func validatePathSegment(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	for _, msg := range content.IsPathSegmentName(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func validateTLSSecretName(name string) []string {
	if name == "" {
		return nil
	}
	return registry.NameIsDNSSubdomain(name, false)
}

// validateIngressStatusUpdate checks the load balancer's addresses: IPs
// (an invalid one already stored may stay) and DNS names that are not IPs.
func validateIngressStatusUpdate(obj, old runtime.Object) field.ErrorList {
	ing, ok := obj.(*networkingv1.Ingress)
	oing, ok2 := old.(*networkingv1.Ingress)
	if !ok || !ok2 {
		return nil
	}
	var oldIPs []string
	for _, in := range oing.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			oldIPs = append(oldIPs, in.IP)
		}
	}
	var errs field.ErrorList
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, in := range ing.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			errs = append(errs, validation.IsValidIPForLegacyField(p.Index(i).Child("ip"), in.IP, true, oldIPs)...)
		}
		if in.Hostname != "" {
			for _, msg := range validation.IsDNS1123Subdomain(in.Hostname) {
				errs = append(errs, field.Invalid(p.Index(i).Child("hostname"), in.Hostname, msg))
			}
			if _, err := netip.ParseAddr(in.Hostname); err == nil {
				errs = append(errs, field.Invalid(p.Index(i).Child("hostname"), in.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return errs
}

func ingressWarnings(obj runtime.Object) []string {
	ing, ok := obj.(*networkingv1.Ingress)
	if !ok {
		return nil
	}
	if _, set := ing.Annotations[ingressClassAnnotation]; set && ing.Spec.IngressClassName == nil {
		return []string{fmt.Sprintf("annotation %q is deprecated, please use 'spec.ingressClassName' instead", ingressClassAnnotation)}
	}
	return nil
}

// loadBalancerWidth is how much of the ADDRESS column upstream prints
// before it cuts the list short with "...".
const loadBalancerWidth = 16

var ingressTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Class", Type: "string", Description: "The name of the IngressClass resource that should be used for additional configuration"},
		{Name: "Hosts", Type: "string", Description: "Hosts that incoming requests are matched against before the ingress rule"},
		{Name: "Address", Type: "string", Description: "Address is a list containing ingress points for the load-balancer"},
		{Name: "Ports", Type: "string", Description: "Ports of TLS configurations that open"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		ing, ok := obj.(*networkingv1.Ingress)
		if !ok {
			return nil
		}
		class := "<none>"
		if ing.Spec.IngressClassName != nil {
			class = *ing.Spec.IngressClassName
		}
		ports := "80"
		if len(ing.Spec.TLS) != 0 {
			ports = "80, 443"
		}
		return []interface{}{ing.Name, class, ingressHosts(ing.Spec.Rules), ingressAddress(ing.Status.LoadBalancer), ports, registry.Age(ing)}
	},
}

// ingressHosts lists the rules' hosts up to three, then how many rules
// more there are; "*" when none has a host. As upstream's, the count is of
// rules, not hosts.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == max {
			more = true
		}
		if !more && r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	s := strings.Join(hosts, ",")
	if more {
		s = fmt.Sprintf("%s + %d more...", s, len(rules)-max)
	}
	return s
}

// ingressAddress lists the load balancer's IPs (or hostnames), sorted and
// without duplicates, cut short as upstream's table does.
func ingressAddress(st networkingv1.IngressLoadBalancerStatus) string {
	seen := map[string]bool{}
	var out []string
	for _, in := range st.Ingress {
		v := in.IP
		if v == "" {
			v = in.Hostname
		}
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	s := strings.Join(out, ",")
	if len(s) > loadBalancerWidth {
		s = s[:loadBalancerWidth-3] + "..."
	}
	return s
}
