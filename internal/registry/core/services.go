package core

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Services returns the descriptor of core/v1 services.
//
// Allocation of spec.clusterIP(s) and node ports is the API server's (its
// allocator runs between Default and Validate): this strategy only keeps
// clusterIP and clusterIPs in step, carries allocated values over on
// updates that omit them, drops fields the new type no longer uses, and
// checks formats.
func Services() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        corev1.SchemeGroupVersion,
		Name:                "services",
		Singular:            "service",
		Kind:                "Service",
		ShortNames:          []string{"svc"},
		Categories:          []string{"all"},
		Namespaced:          true,
		New:                 func() runtime.Object { return &corev1.Service{} },
		NewList:             func() runtime.Object { return &corev1.ServiceList{} },
		Status:              true,
		ReturnDeletedObject: true,
		Strategy: registry.Strategy{
			PrepareForCreate:       prepareServiceForCreate,
			PrepareForUpdate:       prepareServiceForUpdate,
			PrepareForStatusUpdate: prepareServiceForStatusUpdate,
			Default:                defaultService,
			Validate:               validateService,
			ValidateUpdate:         validateServiceUpdate,
			ValidateStatusUpdate:   validateServiceStatusUpdate,
			NameValidation:         NameIsDNS1035Label,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Type", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["type"]},
				{Name: "Cluster-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
				{Name: "External-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]},
				{Name: "Port(s)", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["ports"]},
				registry.AgeColumn,
				{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ServiceSpec{}.SwaggerDoc()["selector"]},
			},
			Row: serviceRow,
		},
		Fields: serviceFields,
	}
}

// serviceFields adds upstream's service field selectors spec.clusterIP and
// spec.type to the metadata ones.
func serviceFields(obj runtime.Object) fields.Set {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return fields.Set{}
	}
	s := metaFields(&svc.ObjectMeta, true)
	s["spec.clusterIP"] = svc.Spec.ClusterIP
	s["spec.type"] = string(svc.Spec.Type)
	return s
}

// serviceRow renders a service as upstream's printer does with wide output
// (the server always sends the wide cells; kubectl hides them).
func serviceRow(obj runtime.Object) []interface{} {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return []interface{}{"", "", "", "", "", "", ""}
	}
	clusterIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	}
	ports := serviceportsString(svc.Spec.Ports)
	if ports == "" {
		ports = "<none>"
	}
	return []interface{}{
		svc.Name,
		string(svc.Spec.Type),
		clusterIP,
		serviceExternalIP(svc),
		ports,
		registry.Age(svc),
		labels.FormatLabels(svc.Spec.Selector),
	}
}

// serviceExternalIP is the EXTERNAL-IP cell: external IPs, load-balancer
// ingress, "<pending>" for a load balancer not yet provisioned, or the
// external name.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		// Upstream lists the ingress points as a sorted set, then the
		// external IPs.
		seen := map[string]bool{}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				seen[ing.IP] = true
			} else if ing.Hostname != "" {
				seen[ing.Hostname] = true
			}
		}
		ips := metaSortedKeys(seen)
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// serviceportsString renders ports as "80/TCP" or "80:30080/TCP".
func serviceportsString(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

// prepareServiceForCreate clears status and fills clusterIPs from an old
// client's clusterIP. Unlike the generic default it leaves
// metadata.generation alone: upstream services carry none.
func prepareServiceForCreate(_ context.Context, obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	svc.Status = corev1.ServiceStatus{}
	normalizeServiceClusterIPs(svc, nil)
}

// prepareServiceForUpdate keeps status, carries allocated values over from
// old when the client left them out (so re-applying the same YAML works),
// keeps clusterIP and clusterIPs in step, and drops the fields the new type
// does not use when the client did not change them itself.
func prepareServiceForUpdate(_ context.Context, obj, old runtime.Object) {
	svc, ok1 := obj.(*corev1.Service)
	oldSvc, ok2 := old.(*corev1.Service)
	if !ok1 || !ok2 {
		return
	}
	svc.Status = oldSvc.Status
	patchServiceAllocatedValues(svc, oldSvc)
	normalizeServiceClusterIPs(svc, oldSvc)
	dropServiceTypeDependentFields(svc, oldSvc)
}

// prepareServiceForStatusUpdate keeps everything but status and defaults
// load-balancer ingress ipMode to VIP for IP ingress points, as upstream's
// defaulting does.
func prepareServiceForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	if svc, ok := obj.(*corev1.Service); ok {
		defaultServiceIngressIPMode(svc)
	}
}

// serviceNeedsClusterIP: every type but ExternalName gets a cluster IP.
func serviceNeedsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName
}

// serviceNeedsNodePort: NodePort services, and LoadBalancer ones unless
// allocateLoadBalancerNodePorts is false.
func serviceNeedsNodePort(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// serviceNeedsHealthCheckNodePort: LoadBalancer with externalTrafficPolicy
// Local.
func serviceNeedsHealthCheckNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// serviceExternallyAccessible: reachable by something other than the
// cluster IP.
func serviceExternallyAccessible(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer ||
		svc.Spec.Type == corev1.ServiceTypeNodePort ||
		(svc.Spec.Type == corev1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
}

// patchServiceAllocatedValues copies cluster IPs, node ports and the health
// check node port from old into svc where svc leaves them empty and both
// versions need them.
func patchServiceAllocatedValues(svc, old *corev1.Service) {
	if serviceNeedsClusterIP(old) && serviceNeedsClusterIP(svc) {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
		}
		if len(svc.Spec.ClusterIPs) == 0 && len(old.Spec.ClusterIPs) > 0 {
			svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
		}
	}
	if serviceNeedsNodePort(old) && serviceNeedsNodePort(svc) {
		used := func(s *corev1.Service) map[int32]bool {
			m := map[int32]bool{}
			for _, p := range s.Spec.Ports {
				if p.NodePort != 0 {
					m[p.NodePort] = true
				}
			}
			return m
		}
		oldUsed, newUsed := used(old), used(svc)
		byName := map[string]int32{}
		for _, p := range old.Spec.Ports {
			byName[p.Name] = p.NodePort
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			if v := byName[p.Name]; v != 0 && !(oldUsed[v] && newUsed[v]) {
				p.NodePort = v
				newUsed[v] = true
			}
		}
	}
	if serviceNeedsHealthCheckNodePort(old) && serviceNeedsHealthCheckNodePort(svc) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

// normalizeServiceClusterIPs keeps the singular clusterIP (old clients) and
// the plural clusterIPs in step. old is nil on create.
func normalizeServiceClusterIPs(svc, old *corev1.Service) {
	if old == nil {
		if svc.Spec.ClusterIP != "" && len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
		return
	}
	// An old client patching another field left clusterIPs out.
	if len(old.Spec.ClusterIPs) > 0 && len(svc.Spec.ClusterIPs) == 0 && old.Spec.ClusterIP == svc.Spec.ClusterIP {
		svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
	}
	if old.Spec.ClusterIP != svc.Spec.ClusterIP && slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs) {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIPs = nil
		} else {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
	}
}

// dropServiceTypeDependentFields clears, on a type change, the fields the
// new type does not use — but only those the client left as they were, so
// that an explicit (invalid) value still fails validation.
func dropServiceTypeDependentFields(svc, old *corev1.Service) {
	if serviceNeedsClusterIP(old) && !serviceNeedsClusterIP(svc) {
		if svc.Spec.ClusterIP == old.Spec.ClusterIP && slices.Equal(svc.Spec.ClusterIPs, old.Spec.ClusterIPs) {
			svc.Spec.ClusterIP = ""
			svc.Spec.ClusterIPs = nil
		}
		if metaPtrEqual(svc.Spec.IPFamilyPolicy, old.Spec.IPFamilyPolicy) {
			svc.Spec.IPFamilyPolicy = nil
		}
		if slices.Equal(svc.Spec.IPFamilies, old.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
	}
	if serviceNeedsNodePort(old) && !serviceNeedsNodePort(svc) {
		oldPorts := map[string]int32{}
		for _, p := range old.Spec.Ports {
			oldPorts[p.Name] = p.NodePort
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if v, ok := oldPorts[p.Name]; ok && v == p.NodePort {
				p.NodePort = 0
			}
		}
	}
	if serviceNeedsHealthCheckNodePort(old) && !serviceNeedsHealthCheckNodePort(svc) && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if metaPtrEqual(svc.Spec.AllocateLoadBalancerNodePorts, old.Spec.AllocateLoadBalancerNodePorts) {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if metaPtrEqual(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
			svc.Spec.LoadBalancerClass = nil
		}
	}
	if serviceExternallyAccessible(old) && !serviceExternallyAccessible(svc) && svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
}

// defaultService fills in a service's defaults as upstream's
// SetDefaults_Service does, plus the IP family fields that upstream's
// allocator fills in: skiff's service network is single-stack IPv4, so a
// service that gets a cluster IP gets ipFamilyPolicy SingleStack and
// ipFamilies [IPv4] (IPv6 when the client gave an IPv6 clusterIP), and a
// selector-less headless service RequireDualStack with both families, as
// upstream does.
func defaultService(obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	spec := &svc.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		spec.SessionAffinityConfig = nil
	case corev1.ServiceAffinityClientIP:
		c := spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			timeout := corev1.DefaultClientIPServiceAffinitySeconds
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if (p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0) ||
			(p.TargetPort.Type == intstr.String && p.TargetPort.StrVal == "") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if serviceExternallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			p := corev1.ServiceInternalTrafficPolicyCluster
			spec.InternalTrafficPolicy = &p
		}
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			t := true
			spec.AllocateLoadBalancerNodePorts = &t
		}
		defaultServiceIngressIPMode(svc)
	}
	defaultServiceIPFamilies(svc)
}

// defaultServiceIngressIPMode sets ipMode VIP on IP ingress points.
func defaultServiceIngressIPMode(svc *corev1.Service) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	for i := range svc.Status.LoadBalancer.Ingress {
		ing := &svc.Status.LoadBalancer.Ingress[i]
		if ing.IP != "" && ing.IPMode == nil {
			m := corev1.LoadBalancerIPModeVIP
			ing.IPMode = &m
		}
	}
}

// defaultServiceIPFamilies fills ipFamilyPolicy and ipFamilies; see
// defaultService.
func defaultServiceIPFamilies(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		spec.IPFamilyPolicy = nil
		spec.IPFamilies = nil
		return
	}
	headless := spec.ClusterIP == corev1.ClusterIPNone
	if headless && len(spec.Selector) == 0 {
		if spec.IPFamilyPolicy == nil {
			p := corev1.IPFamilyPolicyRequireDualStack
			spec.IPFamilyPolicy = &p
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
		if *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack && len(spec.IPFamilies) == 1 {
			other := corev1.IPv6Protocol
			if spec.IPFamilies[0] == corev1.IPv6Protocol {
				other = corev1.IPv4Protocol
			}
			spec.IPFamilies = append(spec.IPFamilies, other)
		}
		return
	}
	if spec.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		if len(spec.ClusterIPs) == 2 || len(spec.IPFamilies) == 2 {
			p = corev1.IPFamilyPolicyRequireDualStack
		}
		spec.IPFamilyPolicy = &p
	}
	if len(spec.IPFamilies) == 0 {
		for _, ip := range spec.ClusterIPs {
			if fam, ok := serviceIPFamilyOf(ip); ok {
				spec.IPFamilies = append(spec.IPFamilies, fam)
			}
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
	}
}

// serviceIPFamilyOf returns the family of a textual IP; false when it is not one.
func serviceIPFamilyOf(ip string) (corev1.IPFamily, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", false
	}
	if a.Is4() || a.Is4In6() {
		return corev1.IPv4Protocol, true
	}
	return corev1.IPv6Protocol, true
}

// serviceMaxClientIPAffinitySeconds is upstream's ceiling on the ClientIP
// affinity timeout (one day).
const serviceMaxClientIPAffinitySeconds = 86400

var (
	serviceTypes = []string{
		string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeExternalName),
		string(corev1.ServiceTypeLoadBalancer), string(corev1.ServiceTypeNodePort),
	}
	serviceProtocols        = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}
	serviceAffinities       = []string{string(corev1.ServiceAffinityClientIP), string(corev1.ServiceAffinityNone)}
	serviceTrafficPolicies  = []string{"Cluster", "Local"}
	serviceIPFamilyPolicies = []string{
		string(corev1.IPFamilyPolicyPreferDualStack), string(corev1.IPFamilyPolicyRequireDualStack),
		string(corev1.IPFamilyPolicySingleStack),
	}
	serviceIPFamilies           = []string{string(corev1.IPv4Protocol), string(corev1.IPv6Protocol)}
	serviceTrafficDistributions = []string{"PreferClose", "PreferSameNode", "PreferSameZone"}
)

// validateService checks a service as upstream's ValidateService does,
// with cluster IPs and node ports checked for format only (they may still
// be unallocated).
func validateService(obj runtime.Object) field.ErrorList {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return metaWrongType(obj, "v1.Service")
	}
	var errs field.ErrorList
	spec := &svc.Spec
	specPath := field.NewPath("spec")
	headless := spec.ClusterIP == corev1.ClusterIPNone

	if spec.Type == "" {
		errs = append(errs, field.Required(specPath.Child("type"), ""))
	} else if !slices.Contains(serviceTypes, string(spec.Type)) {
		errs = append(errs, field.NotSupported(specPath.Child("type"), spec.Type, serviceTypes))
	}

	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	errs = append(errs, validateServiceClusterIPs(svc)...)
	switch spec.Type {
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		if headless {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIP,
				fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		cname := strings.TrimSuffix(spec.ExternalName, ".")
		if cname == "" {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Subdomain(cname) {
				errs = append(errs, field.Invalid(specPath.Child("externalName"), spec.ExternalName, msg))
			}
		}
	}

	errs = append(errs, validateServicePorts(svc)...)

	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}

	switch {
	case spec.SessionAffinity == "":
		errs = append(errs, field.Required(specPath.Child("sessionAffinity"), ""))
	case !slices.Contains(serviceAffinities, string(spec.SessionAffinity)):
		errs = append(errs, field.NotSupported(specPath.Child("sessionAffinity"), spec.SessionAffinity, serviceAffinities))
	case spec.SessionAffinity == corev1.ServiceAffinityClientIP:
		cfgPath := specPath.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds")
		c := spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(cfgPath, "when `sessionAffinity` is ClientIP"))
		} else if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > serviceMaxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(cfgPath, t, fmt.Sprintf("must be greater than 0 and less than %d", serviceMaxClientIPAffinitySeconds)))
		}
	case spec.SessionAffinityConfig != nil:
		errs = append(errs, field.Invalid(specPath.Child("sessionAffinityConfig"), spec.SessionAffinityConfig,
			fmt.Sprintf("must not be set when session affinity is %s", spec.SessionAffinity)))
	}

	for i, ip := range spec.ExternalIPs {
		p := specPath.Child("externalIPs").Index(i)
		if ipErrs := validation.IsValidIPForLegacyField(p, ip, true, nil); len(ipErrs) > 0 {
			errs = append(errs, ipErrs...)
		} else {
			errs = append(errs, metaNonSpecialIP(ip, p)...)
		}
	}

	if spec.LoadBalancerIP != "" {
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerIP"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, validation.IsValidIPForLegacyField(specPath.Child("loadBalancerIP"), spec.LoadBalancerIP, true, nil)...)
		}
	}
	if len(spec.LoadBalancerSourceRanges) > 0 {
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			for i, cidr := range spec.LoadBalancerSourceRanges {
				errs = append(errs, validation.IsValidCIDRForLegacyField(specPath.Child("loadBalancerSourceRanges").Index(i), strings.TrimSpace(cidr), true, nil)...)
			}
		}
	}
	if spec.LoadBalancerClass != nil {
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(*spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
		}
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			errs = append(errs, field.Required(specPath.Child("allocateLoadBalancerNodePorts"), ""))
		}
	} else if spec.AllocateLoadBalancerNodePorts != nil {
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}

	if !serviceExternallyAccessible(svc) {
		if spec.ExternalTrafficPolicy != "" {
			errs = append(errs, field.Invalid(specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		}
	} else if spec.ExternalTrafficPolicy == "" {
		errs = append(errs, field.Required(specPath.Child("externalTrafficPolicy"), ""))
	} else if !slices.Contains(serviceTrafficPolicies, string(spec.ExternalTrafficPolicy)) {
		errs = append(errs, field.NotSupported(specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy, serviceTrafficPolicies))
	}
	if spec.HealthCheckNodePort != 0 {
		if !serviceNeedsHealthCheckNodePort(svc) {
			errs = append(errs, field.Invalid(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		} else {
			for _, msg := range validation.IsValidPortNum(int(spec.HealthCheckNodePort)) {
				errs = append(errs, field.Invalid(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort, msg))
			}
		}
	}
	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			errs = append(errs, field.Required(specPath.Child("internalTrafficPolicy"), ""))
		}
	} else if !slices.Contains(serviceTrafficPolicies, string(*spec.InternalTrafficPolicy)) {
		errs = append(errs, field.NotSupported(specPath.Child("internalTrafficPolicy"), *spec.InternalTrafficPolicy, serviceTrafficPolicies))
	}
	if spec.TrafficDistribution != nil && !slices.Contains(serviceTrafficDistributions, *spec.TrafficDistribution) {
		errs = append(errs, field.NotSupported(specPath.Child("trafficDistribution"), *spec.TrafficDistribution, serviceTrafficDistributions))
	}
	return errs
}

// validateServicePorts checks each port and the uniqueness of names,
// (protocol, port) and (protocol, nodePort).
func validateServicePorts(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	portsPath := field.NewPath("spec", "ports")
	requireName := len(svc.Spec.Ports) > 1
	names := map[string]bool{}
	ports := map[corev1.ServicePort]bool{}
	nodePorts := map[corev1.ServicePort]bool{}
	nodePortsAllowed := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	for i, sp := range svc.Spec.Ports {
		p := portsPath.Index(i)
		if requireName && sp.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else if sp.Name != "" {
			for _, msg := range validation.IsDNS1123Label(sp.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), sp.Name, msg))
			}
			if names[sp.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), sp.Name))
			}
			names[sp.Name] = true
		}
		for _, msg := range validation.IsValidPortNum(int(sp.Port)) {
			errs = append(errs, field.Invalid(p.Child("port"), sp.Port, msg))
		}
		if sp.Protocol == "" {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		} else if !slices.Contains(serviceProtocols, string(sp.Protocol)) {
			errs = append(errs, field.NotSupported(p.Child("protocol"), sp.Protocol, serviceProtocols))
		}
		errs = append(errs, metaPortNumOrName(sp.TargetPort, p.Child("targetPort"))...)
		if sp.AppProtocol != nil {
			errs = append(errs, metav1validation.ValidateLabelName(*sp.AppProtocol, p.Child("appProtocol"))...)
		}
		if sp.NodePort != 0 {
			if !nodePortsAllowed {
				errs = append(errs, field.Forbidden(p.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", svc.Spec.Type)))
			} else {
				for _, msg := range validation.IsValidPortNum(int(sp.NodePort)) {
					errs = append(errs, field.Invalid(p.Child("nodePort"), sp.NodePort, msg))
				}
				key := corev1.ServicePort{Protocol: sp.Protocol, NodePort: sp.NodePort}
				if nodePorts[key] {
					errs = append(errs, field.Duplicate(p.Child("nodePort"), sp.NodePort))
				}
				nodePorts[key] = true
			}
		}
		key := corev1.ServicePort{Protocol: sp.Protocol, Port: sp.Port}
		if ports[key] {
			errs = append(errs, field.Duplicate(p, key))
		}
		ports[key] = true
	}
	return errs
}

// validateServiceClusterIPs checks clusterIP, clusterIPs and the IP family
// fields for format and consistency.
func validateServiceClusterIPs(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	specPath := field.NewPath("spec")
	if spec.Type == corev1.ServiceTypeExternalName {
		if spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		return errs
	}

	ipsPath := specPath.Child("clusterIPs")
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		errs = append(errs, field.Required(ipsPath, "must be set when `clusterIP` is set"))
	}
	if len(spec.ClusterIPs) > 0 && spec.ClusterIPs[0] != spec.ClusterIP {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
	}
	badIP := false
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "'None' must be the first and only value"))
				badIP = true
			}
			continue
		}
		if ipErrs := validation.IsValidIPForLegacyField(ipsPath.Index(i), ip, true, nil); len(ipErrs) > 0 {
			errs = append(errs, ipErrs...)
			badIP = true
		}
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
		badIP = true
	}
	if !badIP && len(spec.ClusterIPs) == 2 {
		f0, _ := serviceIPFamilyOf(spec.ClusterIPs[0])
		f1, _ := serviceIPFamilyOf(spec.ClusterIPs[1])
		if f0 == f1 {
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
		}
	}

	polPath := specPath.Child("ipFamilyPolicy")
	if p := spec.IPFamilyPolicy; p != nil {
		if !slices.Contains(serviceIPFamilyPolicies, string(*p)) {
			errs = append(errs, field.NotSupported(polPath, *p, serviceIPFamilyPolicies))
		} else if *p == corev1.IPFamilyPolicySingleStack {
			if len(spec.ClusterIPs) > 1 {
				errs = append(errs, field.Invalid(polPath, *p, "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"))
			}
			if len(spec.IPFamilies) > 1 {
				errs = append(errs, field.Invalid(polPath, *p, "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
			}
		}
	}
	famPath := specPath.Child("ipFamilies")
	seen := map[corev1.IPFamily]bool{}
	for i, fam := range spec.IPFamilies {
		if !slices.Contains(serviceIPFamilies, string(fam)) {
			errs = append(errs, field.NotSupported(famPath.Index(i), fam, serviceIPFamilies))
		} else if seen[fam] {
			errs = append(errs, field.Duplicate(famPath.Index(i), fam))
		}
		seen[fam] = true
	}
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.Invalid(famPath, spec.IPFamilies, "may specify no more than one IP for each IP family, i.e 2 IPs"))
	}
	if !badIP && spec.ClusterIP != corev1.ClusterIPNone {
		for i, ip := range spec.ClusterIPs {
			if i >= len(spec.IPFamilies) {
				break
			}
			if fam, ok := serviceIPFamilyOf(ip); ok && fam != spec.IPFamilies[i] {
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip,
					fmt.Sprintf("expected an %s value as indicated by `ipFamilies[%d]`", spec.IPFamilies[i], i)))
			}
		}
	}
	return errs
}

// validateServiceUpdate checks a replacement: the primary cluster IP and
// IP family may not change (except to or from ExternalName), a secondary
// may only be released with ipFamilyPolicy SingleStack, and
// loadBalancerClass is immutable on load balancers.
func validateServiceUpdate(obj, old runtime.Object) field.ErrorList {
	svc, ok1 := obj.(*corev1.Service)
	oldSvc, ok2 := old.(*corev1.Service)
	if !ok1 || !ok2 {
		return metaWrongType(obj, "v1.Service")
	}
	var errs field.ErrorList
	ipsPath := field.NewPath("spec", "clusterIPs")
	famPath := field.NewPath("spec", "ipFamilies")
	external := svc.Spec.Type == corev1.ServiceTypeExternalName || oldSvc.Spec.Type == corev1.ServiceTypeExternalName
	bothHeadless := svc.Spec.ClusterIP == corev1.ClusterIPNone && oldSvc.Spec.ClusterIP == corev1.ClusterIPNone
	if !external && !bothHeadless {
		newIPs, oldIPs := svc.Spec.ClusterIPs, oldSvc.Spec.ClusterIPs
		switch {
		case len(oldIPs) == len(newIPs):
			for i := range oldIPs {
				if oldIPs[i] != newIPs[i] {
					errs = append(errs, field.Invalid(ipsPath.Index(i), newIPs, "may not change once set"))
				}
			}
		case len(oldIPs) > len(newIPs):
			if len(newIPs) == 0 {
				errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "primary clusterIP can not be unset"))
			} else if newIPs[0] != oldIPs[0] {
				errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
			}
			if len(newIPs) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
				errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"))
			}
		default:
			if len(oldIPs) > 0 && newIPs[0] != oldIPs[0] {
				errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
			}
		}
		newFams, oldFams := svc.Spec.IPFamilies, oldSvc.Spec.IPFamilies
		if len(oldFams) > 0 && len(newFams) > 0 && oldFams[0] != newFams[0] {
			errs = append(errs, field.Invalid(famPath.Index(0), newFams, "may not change once set"))
		}
		if len(oldFams) == 2 && len(newFams) == 2 && oldFams[1] != newFams[1] {
			errs = append(errs, field.Invalid(famPath.Index(1), newFams, "may not change once set"))
		}
		if len(oldFams) > len(newFams) && len(newFams) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			errs = append(errs, field.Invalid(famPath, newFams, "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary ipFamily"))
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && oldSvc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		!metaPtrEqual(svc.Spec.LoadBalancerClass, oldSvc.Spec.LoadBalancerClass) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "loadBalancerClass"), svc.Spec.LoadBalancerClass, "may not change once set"))
	}
	return append(errs, validateService(obj)...)
}

// validateServiceStatusUpdate checks the load-balancer ingress points.
func validateServiceStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return metaWrongType(obj, "v1.Service")
	}
	var errs field.ErrorList
	ingPath := field.NewPath("status", "loadBalancer", "ingress")
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		p := ingPath.Index(i)
		if ing.IP != "" {
			errs = append(errs, validation.IsValidIPForLegacyField(p.Child("ip"), ing.IP, true, nil)...)
		}
		if ing.IPMode != nil {
			if ing.IP == "" {
				errs = append(errs, field.Forbidden(p.Child("ipMode"), "may only be set when `ip` is set"))
			} else if m := *ing.IPMode; m != corev1.LoadBalancerIPModeVIP && m != corev1.LoadBalancerIPModeProxy {
				errs = append(errs, field.NotSupported(p.Child("ipMode"), m, []string{string(corev1.LoadBalancerIPModeProxy), string(corev1.LoadBalancerIPModeVIP)}))
			}
		} else if ing.IP != "" && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Required(p.Child("ipMode"), "must be specified when `ip` is set"))
		}
		if ing.Hostname != "" {
			for _, msg := range validation.IsDNS1123Subdomain(ing.Hostname) {
				errs = append(errs, field.Invalid(p.Child("hostname"), ing.Hostname, msg))
			}
			if _, err := netip.ParseAddr(ing.Hostname); err == nil {
				errs = append(errs, field.Invalid(p.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return errs
}
