package core

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// This file holds the small helpers the non-pod core resources share
// (services, secrets, quotas, volumes, ...). Their names carry a "meta"
// prefix so that they cannot collide with the pod registry's helpers in the
// same package.

// NameIsDNS1035Label is the metadata.name check of services: a DNS-1035
// label (lower-case alphanumerics and '-', starting with a letter, at most
// 63 characters), because a service's name becomes a DNS label and an
// environment variable prefix in every pod of its namespace. prefix is true
// for a generateName prefix, which may end in '-'.
func NameIsDNS1035Label(name string, prefix bool) []string {
	return apimachineryvalidation.NameIsDNS1035Label(name, prefix)
}

// metaWrongType reports an object of an unexpected Go type. The server
// never passes one; it guards the strategy funcs against misuse without a
// panic.
func metaWrongType(obj runtime.Object, want string) field.ErrorList {
	return field.ErrorList{field.InternalError(nil, fmt.Errorf("expected *%s, got %T", want, obj))}
}

// metaSortedKeys returns the keys of m in order, so that errors and table
// cells built from a map come out the same on every call.
func metaSortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// metaFields is the field-selector set every object has: metadata.name
// and, for namespaced resources, metadata.namespace.
func metaFields(m *metav1.ObjectMeta, namespaced bool) fields.Set {
	s := fields.Set{"metadata.name": m.Name}
	if namespaced {
		s["metadata.namespace"] = m.Namespace
	}
	return s
}

// metaNonNegativeQuantity rejects a negative quantity as upstream's
// ValidateNonnegativeQuantity does.
func metaNonNegativeQuantity(q resource.Quantity, p *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must be greater than or equal to 0")}
	}
	return nil
}

// metaPositiveQuantity rejects a zero or negative quantity.
func metaPositiveQuantity(q resource.Quantity, p *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must be greater than zero")}
	}
	return nil
}

// metaNonSpecialIP rejects addresses that can never name a remote endpoint
// (unspecified, loopback, link-local, link-local multicast), as upstream's
// ValidateNonSpecialIP does for endpoints and external IPs. ip must already
// have been checked to parse; one that does not is left alone.
func metaNonSpecialIP(ip string, p *field.Path) field.ErrorList {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil
	}
	addr = addr.Unmap()
	switch {
	case addr.IsUnspecified():
		return field.ErrorList{field.Invalid(p, ip, "may not be unspecified (0.0.0.0)")}
	case addr.IsLoopback():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case addr.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case addr.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}

// metaSince renders a MicroTime like registry.Since renders a Time.
func metaSince(t metav1.MicroTime) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return registry.Since(metav1.NewTime(t.Time))
}

// metaPtrEqual reports whether two optional values are both unset or
// both set to the same value.
func metaPtrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// metaPortNumOrName checks a port given as a number (1-65535) or as an
// IANA_SVC_NAME.
func metaPortNumOrName(port intstr.IntOrString, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch port.Type {
	case intstr.Int:
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			errs = append(errs, field.Invalid(p, port.IntValue(), msg))
		}
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(p, port.StrVal, msg))
		}
	default:
		errs = append(errs, field.InternalError(p, fmt.Errorf("unknown type: %v", port.Type)))
	}
	return errs
}
