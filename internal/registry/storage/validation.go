package storage

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Upstream's limits on a class's parameters and a VolumeAttachment's status.
const (
	maxParameters         = 512
	maxParametersSize     = 256 * (1 << 10) // bytes of keys and values together
	maxAttachMetadataSize = 256 * (1 << 10)
	maxVolumeErrorMessage = 1024
	maxCSIDriverName      = 63
)

// immutable is the error 1.37's declarative validation reports for a
// changed field of a StorageClass or a VolumeAttachment's spec. It carries
// no value, so the client reads "Invalid value: null: field is immutable".
func immutable(p *field.Path) *field.Error {
	return field.Invalid(p, nil, apimachineryvalidation.FieldImmutableErrorMsg)
}

// qualifiedName reports value unless it is a qualified name
// ("example.com/name").
func qualifiedName(value string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsQualifiedName(value) {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

// dnsSubdomain reports a name that is not a DNS subdomain: a class name,
// a node name, a persistent volume name. An empty one is reported too.
func dnsSubdomain(value string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(value, false) {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

// csiDriverName checks the name of a CSI driver as a CSINode or a CSI
// volume source names it: required, at most 63 bytes, a DNS subdomain in
// any case.
func csiDriverName(name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p, ""))
	}
	if len(name) > maxCSIDriverName {
		errs = append(errs, field.TooLong(p, name, maxCSIDriverName))
	}
	for _, msg := range content.IsDNS1123Subdomain(strings.ToLower(name)) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// provisioner checks a StorageClass's provisioner or a
// VolumeAttributesClass's driverName: required, and a qualified name in
// any case. As upstream, the value reported is the lowercased one.
func provisioner(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return qualifiedName(strings.ToLower(name), p)
}

// parameters checks a class's parameters: at most 512 of them, no empty
// key, at most 256 KiB of keys and values; and at least one when
// allowEmpty is false. Upstream's TooLong for the count reads "may not be
// more than 512 bytes".
func parameters(params map[string]string, allowEmpty bool, p *field.Path) field.ErrorList {
	if len(params) > maxParameters {
		return field.ErrorList{field.TooLong(p, "", maxParameters)}
	}
	var errs field.ErrorList
	size := 0
	for k, v := range params {
		if k == "" {
			errs = append(errs, field.Invalid(p, k, "field can not be empty."))
		}
		size += len(k) + len(v)
	}
	if size > maxParametersSize {
		errs = append(errs, field.TooLong(p, "", maxParametersSize))
	}
	if !allowEmpty && len(params) == 0 {
		errs = append(errs, field.Required(p, "must contain at least one key/value pair"))
	}
	return errs
}

// deprecatedNodeLabels are the node labels upstream warns about in
// topology selectors, with its advice.
var deprecatedNodeLabels = map[string]string{
	"beta.kubernetes.io/arch":                  `deprecated since v1.14; use "kubernetes.io/arch" instead`,
	"beta.kubernetes.io/os":                    `deprecated since v1.14; use "kubernetes.io/os" instead`,
	"failure-domain.beta.kubernetes.io/region": `deprecated since v1.17; use "topology.kubernetes.io/region" instead`,
	"failure-domain.beta.kubernetes.io/zone":   `deprecated since v1.17; use "topology.kubernetes.io/zone" instead`,
	"beta.kubernetes.io/instance-type":         `deprecated since v1.17; use "node.kubernetes.io/instance-type" instead`,
}

// setDefault points *p at a copy of v when *p is nil.
func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}
