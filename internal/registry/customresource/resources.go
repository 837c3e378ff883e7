package customresource

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeversion "k8s.io/apimachinery/pkg/version"

	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-io/skiff/internal/registry"
)

// version is one version of a custom resource, with what its descriptor's
// funcs need; built once per call of Resources.
type version struct {
	gvk        schema.GroupVersionKind
	listKind   string
	namespaced bool
	schema     *versionSchema
	// status is true when the version has a status subresource; scale is
	// its scale subresource, or nil.
	status     bool
	scale      *apiextensionsv1.CustomResourceSubresourceScale
	selectable []selectableField
}

// Resources returns the descriptors of crd's custom resources, one per
// served version, in the order of spec.versions. The storage version's
// descriptor is stored as itself; every other one is StoredAs the storage
// version and converted to it and back (conversion strategy None: only
// apiVersion changes; strategy Webhook: by webhook, the CRD's conversion
// webhook client, or, when it is nil, not at all: ToStored and FromStored
// fail with ErrWebhookConversion). Names are status.acceptedNames when
// set, else spec.names.
//
// It fails when crd cannot be served: no storage version, a storage
// version that is not served while others are, a schema that is not
// structural (unless spec.preserveUnknownFields), or an unknown conversion
// strategy. A CRD that serves no version gives no descriptors.
func Resources(crd *apiextensionsv1.CustomResourceDefinition, webhook runtime.ObjectConvertor) ([]*registry.Resource, error) {
	if crd == nil {
		return nil, errors.New("no CustomResourceDefinition")
	}
	names := crd.Status.AcceptedNames
	if names.Plural == "" || names.Kind == "" {
		names = crd.Spec.Names
	}
	if names.Plural == "" || names.Kind == "" {
		return nil, fmt.Errorf("CustomResourceDefinition %s: no plural name or kind", crd.Name)
	}
	if names.Singular == "" {
		names.Singular = strings.ToLower(names.Kind)
	}
	if names.ListKind == "" {
		names.ListKind = names.Kind + "List"
	}

	useWebhook := false
	if c := crd.Spec.Conversion; c != nil {
		switch c.Strategy {
		case "", apiextensionsv1.NoneConverter:
		case apiextensionsv1.WebhookConverter:
			useWebhook = true
		default:
			return nil, fmt.Errorf("CustomResourceDefinition %s: unknown conversion strategy %q", crd.Name, c.Strategy)
		}
	}

	storageIdx := slices.IndexFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Storage })
	if storageIdx < 0 {
		return nil, fmt.Errorf("CustomResourceDefinition %s: no storage version", crd.Name)
	}
	storageVer := &crd.Spec.Versions[storageIdx]
	if !slices.ContainsFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Served }) {
		return nil, nil
	}
	if !storageVer.Served {
		return nil, fmt.Errorf("CustomResourceDefinition %s: storage version %s is not served, and skiff serves other versions only through it", crd.Name, storageVer.Name)
	}

	versions := make([]*version, len(crd.Spec.Versions))
	for i := range crd.Spec.Versions {
		cv := &crd.Spec.Versions[i]
		if !cv.Served {
			continue
		}
		v, err := newVersion(crd, cv, names)
		if err != nil {
			return nil, fmt.Errorf("CustomResourceDefinition %s: %w", crd.Name, err)
		}
		versions[i] = v
	}
	stored := versions[storageIdx]
	storedAs := stored.gvk.GroupVersion().WithResource(names.Plural)

	byName := map[string]*version{}
	for _, v := range versions {
		if v != nil {
			byName[v.gvk.Version] = v
		}
	}
	var out []*registry.Resource
	for i, v := range versions {
		if v == nil {
			continue
		}
		res := v.resource(&crd.Spec.Versions[i], names, crd)
		c := &converter{served: v, stored: stored, byName: byName, webhook: useWebhook, webhookClient: webhook}
		if v != stored {
			res.StoredAs = &storedAs
			res.ToStored = c.toStored
			res.FromStored = c.fromStored
		} else if stored.schema.hasDefaults || mayHoldOtherVersions(crd) {
			// Objects stored before the storage version changed, and
			// defaults added since they were written. Without either,
			// reads stay the plain path: a LIST builds no new list.
			res.Read = c.fromStored
		}
		out = append(out, res)
	}
	return out, nil
}

// newVersion prepares version cv of crd.
func newVersion(crd *apiextensionsv1.CustomResourceDefinition, cv *apiextensionsv1.CustomResourceDefinitionVersion, names apiextensionsv1.CustomResourceDefinitionNames) (*version, error) {
	v := &version{
		gvk:        schema.GroupVersionKind{Group: crd.Spec.Group, Version: cv.Name, Kind: names.Kind},
		listKind:   names.ListKind,
		namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		selectable: selectableFieldsOf(cv.SelectableFields),
	}
	if sub := cv.Subresources; sub != nil {
		v.status = sub.Status != nil
		if sub.Scale != nil {
			v.scale = sub.Scale.DeepCopy()
		}
	}
	var err error
	if v.schema, err = compileSchema(crd, cv, v.status); err != nil {
		return nil, err
	}
	return v, nil
}

// resource returns the version's descriptor, without what storage adds.
func (v *version) resource(cv *apiextensionsv1.CustomResourceDefinitionVersion, names apiextensionsv1.CustomResourceDefinitionNames, crd *apiextensionsv1.CustomResourceDefinition) *registry.Resource {
	return &registry.Resource{
		GroupVersion:  v.gvk.GroupVersion(),
		Name:          names.Plural,
		Singular:      names.Singular,
		Kind:          names.Kind,
		ShortNames:    slices.Clone(names.ShortNames),
		Categories:    slices.Clone(names.Categories),
		Namespaced:    v.namespaced,
		New:           v.newObject,
		NewList:       v.newList,
		Strategy:      v.strategy(),
		Status:        v.status,
		Scale:         v.scaleSubresource(),
		Table:         table(cv.AdditionalPrinterColumns),
		Fields:        v.fieldSet,
		Prune:         v.prune,
		JSONOnly:      true,
		OpenAPISchema: v.openAPISchema(),
		Warning:       deprecationWarning(cv, v.gvk, names.Kind, crd),
	}
}

// deprecationWarning is what every request to a deprecated version is
// told: the version's deprecationWarning, or, as upstream words it,
// "<group>/<version> <Kind> is deprecated" followed by the newest served
// version that is not ("; use <group>/<version> <Kind>").
func deprecationWarning(cv *apiextensionsv1.CustomResourceDefinitionVersion, gvk schema.GroupVersionKind, kind string, crd *apiextensionsv1.CustomResourceDefinition) string {
	if !cv.Deprecated {
		return ""
	}
	if cv.DeprecationWarning != nil {
		return *cv.DeprecationWarning
	}
	msg := fmt.Sprintf("%s/%s %s is deprecated", gvk.Group, cv.Name, kind)
	newest := ""
	for _, other := range crd.Spec.Versions {
		if !other.Served || other.Deprecated || kubeversion.CompareKubeAwareVersionStrings(cv.Name, other.Name) >= 0 {
			continue
		}
		if newest == "" || kubeversion.CompareKubeAwareVersionStrings(other.Name, newest) > 0 {
			newest = other.Name
		}
	}
	if newest != "" {
		msg += fmt.Sprintf("; use %s/%s %s", gvk.Group, newest, kind)
	}
	return msg
}

// openAPISchema is the version's schema as OpenAPI publishes it (and
// server-side apply reads it): the structural schema, or, for a version
// without one, an object that keeps every field.
func (v *version) openAPISchema() *spec.Schema {
	if v.schema.structural != nil {
		return v.schema.structural.ToKubeOpenAPI()
	}
	s := &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	return s
}

func (v *version) newObject() runtime.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v.gvk)
	return u
}

// newList returns an empty list of the version's kind. Its kind is the
// CRD's listKind, which is <Kind>List unless the CRD says otherwise.
func (v *version) newList() runtime.Object {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(v.gvk.GroupVersion().WithKind(v.listKind))
	return l
}

// prune is the descriptor's Prune: upstream's coercion of a decoded
// custom resource, with the paths of the unknown fields it dropped.
func (v *version) prune(obj runtime.Object) []string {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	return v.schema.coerce(u.Object, true)
}

// mayHoldOtherVersions tells whether storage may hold objects of crd
// written as a version other than today's storage version: it has, or
// had (status.storedVersions), more than one.
func mayHoldOtherVersions(crd *apiextensionsv1.CustomResourceDefinition) bool {
	if len(crd.Spec.Versions) > 1 {
		return true
	}
	for _, v := range crd.Status.StoredVersions {
		if v != crd.Spec.Versions[0].Name {
			return true
		}
	}
	return false
}
