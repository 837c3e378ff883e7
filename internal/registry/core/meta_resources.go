package core

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource-name rules shared by limit ranges and resource quotas.

// metaStandardContainerResources are the resources a container may ask for
// without a domain prefix (hugepages-<size> aside).
var metaStandardContainerResources = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
}

// metaStandardQuotaResources are the resources a quota may name without a
// domain prefix (hugepages aside).
var metaStandardQuotaResources = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
	corev1.ResourceRequestsCPU: true, corev1.ResourceRequestsMemory: true, corev1.ResourceRequestsStorage: true,
	corev1.ResourceRequestsEphemeralStorage: true, corev1.ResourceLimitsCPU: true, corev1.ResourceLimitsMemory: true,
	corev1.ResourceLimitsEphemeralStorage: true, corev1.ResourcePods: true, corev1.ResourceServices: true,
	corev1.ResourceReplicationControllers: true, corev1.ResourceQuotas: true, corev1.ResourceSecrets: true,
	corev1.ResourcePersistentVolumeClaims: true, corev1.ResourceConfigMaps: true,
	corev1.ResourceServicesNodePorts: true, corev1.ResourceServicesLoadBalancers: true,
}

// metaIntegerQuotaResources are counted in whole units.
var metaIntegerQuotaResources = map[corev1.ResourceName]bool{
	corev1.ResourcePods: true, corev1.ResourceServices: true, corev1.ResourceReplicationControllers: true,
	corev1.ResourceQuotas: true, corev1.ResourceSecrets: true, corev1.ResourceConfigMaps: true,
	corev1.ResourcePersistentVolumeClaims: true, corev1.ResourceServicesNodePorts: true,
	corev1.ResourceServicesLoadBalancers: true,
}

// metaResourceNameFormat checks that name is a qualified name ("cpu",
// "example.com/gpu", "count/deployments.apps").
func metaResourceNameFormat(name corev1.ResourceName, p *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelName(string(name), p)
}

// metaIsHugePages reports hugepages-<size> names, with an optional
// "requests." prefix for quotas.
func metaIsHugePages(name corev1.ResourceName) bool {
	s := strings.TrimPrefix(string(name), corev1.DefaultResourceRequestsPrefix)
	return strings.HasPrefix(s, corev1.ResourceHugePagesPrefix)
}

// metaIsExtendedResource reports a domain-prefixed name outside the
// kubernetes.io domain (extended resources such as example.com/gpu, or
// requests.example.com/gpu in a quota).
func metaIsExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") && !strings.Contains(s, "k8s.io/")
}

// metaQuotaQuantity is upstream's ValidateResourceQuantityValue: not
// negative, and whole for counted and extended resources.
func metaQuotaQuantity(name corev1.ResourceName, q resource.Quantity, p *field.Path) field.ErrorList {
	errs := metaNonNegativeQuantity(q, p)
	integer := metaIntegerQuotaResources[name] || strings.HasPrefix(string(name), "count/") || metaIsExtendedResource(name)
	if integer && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(p, q.String(), "must be an integer"))
	}
	return errs
}
