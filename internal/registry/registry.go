// Package registry describes the REST resources skiff serves: for each one,
// its names as discovery shows them, the Go type that holds it, and its
// strategy — defaulting, validation, status and scale subresources, table
// columns and field selectors. The API server (internal/apiserver) is generic
// over these descriptors; one package per API group under registry/ fills
// them in (registry/core, registry/apps, ...).
//
// Objects handled here are always the versioned types of k8s.io/api: skiff
// has no internal API version. A resource served in more than one version
// (autoscaling v1 and v2, core and events.k8s.io events) is stored in one of
// them and converted at the edge (see Resource.StoredAs).
package registry

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Resource describes one served group/version/resource.
type Resource struct {
	// GroupVersion is the version this descriptor serves.
	GroupVersion schema.GroupVersion
	// Name is the plural resource name used in URLs ("pods").
	Name string
	// Singular is the singular name ("pod").
	Singular string
	// Kind is the object kind ("Pod"); the list kind is Kind+"List".
	Kind string
	// ShortNames and Categories are published in discovery as upstream does
	// ("po"; "all").
	ShortNames []string
	Categories []string
	// Namespaced is false for cluster-scoped resources (nodes, namespaces).
	Namespaced bool

	// New returns a new empty object of the served type; NewList a new
	// empty list of it.
	New     func() runtime.Object
	NewList func() runtime.Object

	// Strategy holds the type's defaulting and validation.
	Strategy Strategy

	// Status is true when the resource has a status subresource. Writes to
	// the main resource then keep status as stored, and writes to /status
	// keep everything but status (and, where Strategy says so, metadata).
	Status bool
	// Scale is non-nil when the resource has a scale subresource.
	Scale *Scale
	// Subresources are further subresources that, like status, take the
	// whole object on PUT and PATCH and write only part of it
	// (certificatesigningrequests/approval). Routing, discovery, OpenAPI
	// and managedFields all read them from here.
	Subresources []Subresource

	// Table gives the columns `kubectl get` prints. Nil means the default
	// (Name, Age).
	Table *Table

	// Fields returns the field-selector set for obj. It must include
	// metadata.name and, for namespaced resources, metadata.namespace. Nil
	// means only those two. It must not fail on a well-formed object.
	Fields func(obj runtime.Object) fields.Set

	// StoredAs, when set, names the resource this one is stored as: reads
	// and writes go to that resource's storage and watch cache, converted
	// with ToStored and FromStored. Strategy is still this version's: it
	// runs before ToStored on writes.
	StoredAs   *schema.GroupVersionResource
	ToStored   func(obj runtime.Object) (runtime.Object, error)
	FromStored func(obj runtime.Object) (runtime.Object, error)

	// Read, when set, completes an object read from this resource's own
	// storage before it is served: a custom resource stored as another
	// version (before the CRD's storage version changed) is converted, and
	// gets its schema's current defaults, as upstream's decoder does. It
	// must not modify obj (stored objects are shared with the watch
	// cache); it returns obj itself when it has nothing to do.
	Read func(obj runtime.Object) (runtime.Object, error)

	// TTL, when > 0, makes stored objects expire that many seconds after
	// their last write (events: upstream's --event-ttl of one hour).
	TTL int64

	// Prune, when set, drops from a decoded object the fields its schema
	// does not know (custom resources) and returns their paths
	// ("spec.foo"), so that fieldValidation Strict can refuse them and Warn
	// warn about them, as upstream reports unknown fields of custom
	// resources. The server calls it on every write body, before Default.
	Prune func(obj runtime.Object) []string
	// JSONOnly marks a resource without a protobuf form (custom
	// resources): its objects are stored as JSON, and a client that
	// accepts only protobuf gets 406, as from upstream.
	JSONOnly bool
	// OpenAPISchema, when set, is the OpenAPI v3 schema of the objects,
	// for a resource whose objects have no Go type to describe them
	// (custom resources): the OpenAPI documents and server-side apply
	// read it. apiVersion, kind and metadata are the server's to add.
	OpenAPISchema *spec.Schema
	// Terminating refuses new objects (405) while the existing ones stay
	// served: the custom resources of a CRD being deleted.
	Terminating bool
	// Warning, when set, is sent in the Warning header of every request
	// to the resource: a deprecated custom resource version's
	// deprecation warning.
	Warning string

	// ReturnDeletedObject makes a finished DELETE answer with the object,
	// as upstream does for pods, namespaces, services and nodes; otherwise
	// it answers with a Success Status.
	ReturnDeletedObject bool

	// Verbs overrides the default verb set published in discovery. Nil
	// means all of: create delete deletecollection get list patch update
	// watch.
	Verbs []string

	// Create, when set, makes the resource virtual, as upstream's reviews
	// are (selfsubjectreviews, selfsubjectaccessreviews): it has no
	// storage and persists nothing. The server serves only create — a POST
	// to the collection, decoded into New(), defaulted and validated by
	// Strategy — and answers 201 with what Create returns. ctx carries the
	// request's user. Verbs should then be {"create"}; StoredAs, Status,
	// Scale and TTL must be unset.
	Create func(ctx context.Context, obj runtime.Object) (runtime.Object, error)

	// Get and List, when both set, make the resource read-only and served
	// from memory, as metrics.k8s.io is: nothing is stored, there is no
	// watch, and only get and list are served. Get returns one object or
	// a NotFound error; List the objects in namespace ("" for all) that
	// match both selectors, in a stable order. Verbs should then be
	// {"get", "list"}; Create, StoredAs, Status, Scale and TTL must be
	// unset.
	Get  func(ctx context.Context, namespace, name string) (runtime.Object, error)
	List func(ctx context.Context, namespace string, label labels.Selector, field fields.Selector) ([]runtime.Object, error)
}

// InMemory reports whether the resource is served from memory (Get and
// List) rather than from storage.
func (r *Resource) InMemory() bool { return r.Get != nil && r.List != nil }

// GroupVersionKind returns the kind this resource serves.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion.WithKind(r.Kind)
}

// GroupVersionResource returns the resource's GVR.
func (r *Resource) GroupVersionResource() schema.GroupVersionResource {
	return r.GroupVersion.WithResource(r.Name)
}

// Strategy is a resource's defaulting and validation. Every func may be
// nil, meaning "nothing to do". The API server calls, on create:
// PrepareForCreate, Default, Validate; on update (PUT and PATCH of the main
// resource): PrepareForUpdate, Default, ValidateUpdate; on a status write:
// PrepareForStatusUpdate, ValidateStatusUpdate. Generic metadata work
// (name, namespace, uid, creationTimestamp, resourceVersion, generateName,
// managed fields) is the server's, and so is the status/spec split when
// these funcs are nil (see DefaultPrepareForCreate and friends): a Strategy
// only needs to say what differs from that.
//
// The funcs receive objects of the resource's own type and may mutate obj
// (never old). They must not panic on any object a client can send: every
// pointer field may be nil.
type Strategy struct {
	// PrepareForCreate clears what a client may not set on create. Nil
	// means DefaultPrepareForCreate (status reset, generation 1 when the
	// type has a spec).
	PrepareForCreate func(ctx context.Context, obj runtime.Object)
	// PrepareForUpdate carries over from old what a write to the main
	// resource may not change. Nil means DefaultPrepareForUpdate (status
	// kept, generation bumped when spec changed).
	PrepareForUpdate func(ctx context.Context, obj, old runtime.Object)
	// PrepareForStatusUpdate carries over from old everything a status
	// write may not change. Nil means DefaultPrepareForStatusUpdate (all
	// but status and metadata.labels/annotations kept from old).
	PrepareForStatusUpdate func(ctx context.Context, obj, old runtime.Object)

	// Default fills in defaults as upstream's SetDefaults_* functions do.
	Default func(obj runtime.Object)

	// Validate checks a new object; ValidateUpdate a replacement for old
	// (immutable fields). ValidateStatusUpdate a status write. The object's
	// metadata has been checked by the server already (name format,
	// namespace presence); these check the rest. Field paths are rooted at
	// the object ("spec.containers[0].image").
	Validate             func(obj runtime.Object) field.ErrorList
	ValidateUpdate       func(obj, old runtime.Object) field.ErrorList
	ValidateStatusUpdate func(obj, old runtime.Object) field.ErrorList

	// NameValidation checks metadata.name. Nil means a DNS-1123 subdomain
	// (NameIsDNSSubdomain); namespaces use NameIsDNSLabel, and so on as
	// upstream.
	NameValidation func(name string, prefix bool) []string

	// GracePeriod returns how many seconds a DELETE of obj waits before the
	// object goes, given the client's gracePeriodSeconds (nil when unset).
	// Nil means 0: deleted at once unless finalizers hold it. Pods wait
	// while a kubelet stops them.
	GracePeriod func(obj runtime.Object, requested *int64) int64
	// BeginDeletion changes obj when its deletion starts and something
	// holds it (namespaces: phase Terminating). Optional.
	BeginDeletion func(obj runtime.Object)
	// DeletionHeld reports whether something other than metadata.finalizers
	// holds obj back from deletion (namespaces: spec.finalizers). Optional.
	DeletionHeld func(obj runtime.Object) bool

	// WarningsOnCreate/Update return warnings sent to the client in the
	// Warning header (e.g. deprecated fields). Optional.
	WarningsOnCreate func(obj runtime.Object) []string
	WarningsOnUpdate func(obj, old runtime.Object) []string
}

// Subresource is a status-like subresource. GET returns the whole
// object; PUT and PATCH (server-side apply included) take the whole object,
// PrepareForUpdate keeps from old everything a write there may not change,
// admission sees the write with Sub = Name, and ValidateUpdate checks it.
// The main resource's Default runs first, as on every update; its
// PrepareForUpdate and ValidateUpdate do not.
type Subresource struct {
	// Name is the path segment after the object's name ("approval").
	Name string
	// PrepareForUpdate carries over from old what a write here may not
	// change. Required.
	PrepareForUpdate func(ctx context.Context, obj, old runtime.Object)
	// ValidateUpdate checks a write here. Nil means nothing beyond the
	// server's metadata checks.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// ResetFields are the fields PrepareForUpdate resets, as dotted JSON
	// paths ("spec", "status.certificate"): managedFields do not give them
	// to the manager that sent them, as upstream's GetResetFields.
	ResetFields []string
	// OwnedFields, when set instead, are the only fields a write here
	// gives its manager, as dotted JSON paths in which "*" stands for
	// any list item ("spec.containers.*.resources"), with all below
	// them: upstream's include filters for pods/resize and
	// pods/ephemeralcontainers.
	OwnedFields []string
}

// Subresource returns the status-like subresource named name, or nil.
func (r *Resource) Subresource(name string) *Subresource {
	for i := range r.Subresources {
		if r.Subresources[i].Name == name {
			return &r.Subresources[i]
		}
	}
	return nil
}

// Scale reads and writes the scale subresource of a resource.
type Scale struct {
	// Get returns spec.replicas, status.replicas and the status label
	// selector (as a string, "app=web") of obj.
	Get func(obj runtime.Object) (specReplicas, statusReplicas int32, selector string)
	// SetReplicas sets spec.replicas.
	SetReplicas func(obj runtime.Object, replicas int32)
}

// Table describes a resource's `kubectl get` columns. Columns are upstream's
// for the type, Name first; priority 1 columns are the -o wide ones.
type Table struct {
	Columns []metav1.TableColumnDefinition
	// Row returns one cell per column for obj (strings, int64, or similar
	// JSON-able values).
	Row func(obj runtime.Object) []interface{}
}
