package storage

import (
	"context"
	"slices"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

const (
	// Bounds of a token request's expirationSeconds: ten minutes, 2^32
	// seconds.
	minTokenExpirationSeconds = 10 * 60
	maxTokenExpirationSeconds = 1 << 32
	// minAllocatableUpdatePeriod is the shortest
	// nodeAllocatableUpdatePeriodSeconds, in seconds.
	minAllocatableUpdatePeriod = 10

	// tokenInSecretsWarning is upstream's advice when a driver asks for
	// tokens without saying where it wants them.
	tokenInSecretsWarning = "spec.serviceAccountTokenInSecrets is unset; if supported by this CSI driver, set to true to prevent possible logging of tokens in volume attributes"
)

var (
	fsGroupPolicies = []string{
		string(storagev1.FileFSGroupPolicy),
		string(storagev1.NoneFSGroupPolicy),
		string(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy),
	}
	volumeLifecycleModes = []string{string(storagev1.VolumeLifecyclePersistent), string(storagev1.VolumeLifecycleEphemeral)}
)

// defaultCSIDriver applies upstream's v1 defaults: attachRequired true;
// podInfoOnMount, storageCapacity, requiresRepublish and seLinuxMount
// false; fsGroupPolicy ReadWriteOnceWithFSType; volumeLifecycleModes
// [Persistent] when empty.
func defaultCSIDriver(obj runtime.Object) {
	d, ok := obj.(*storagev1.CSIDriver)
	if !ok {
		return
	}
	s := &d.Spec
	setDefault(&s.AttachRequired, true)
	setDefault(&s.PodInfoOnMount, false)
	setDefault(&s.StorageCapacity, false)
	setDefault(&s.FSGroupPolicy, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
	if len(s.VolumeLifecycleModes) == 0 {
		s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
	}
	setDefault(&s.RequiresRepublish, false)
	setDefault(&s.SELinuxMount, false)
}

// prepareCSIDriverForCreate does nothing: upstream leaves
// metadata.generation as the client sent it (the registry's default would
// set 1).
func prepareCSIDriverForCreate(context.Context, runtime.Object) {}

// prepareCSIDriverForUpdate bumps metadata.generation when the spec
// changed, as upstream does.
func prepareCSIDriverForUpdate(_ context.Context, obj, old runtime.Object) {
	d, ok1 := obj.(*storagev1.CSIDriver)
	o, ok2 := old.(*storagev1.CSIDriver)
	if !ok1 || !ok2 {
		return
	}
	d.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(d.Spec, o.Spec) {
		d.Generation++
	}
}

func validateCSIDriver(obj runtime.Object) field.ErrorList {
	d, ok := obj.(*storagev1.CSIDriver)
	if !ok {
		return nil
	}
	return csiDriverSpec(&d.Spec, field.NewPath("spec"))
}

// validateCSIDriverUpdate checks the new spec as on create, then that
// attachRequired and volumeLifecycleModes are unchanged.
func validateCSIDriverUpdate(obj, old runtime.Object) field.ErrorList {
	d, ok1 := obj.(*storagev1.CSIDriver)
	o, ok2 := old.(*storagev1.CSIDriver)
	if !ok1 || !ok2 {
		return nil
	}
	sp := field.NewPath("spec")
	errs := csiDriverSpec(&d.Spec, sp)
	// Upstream's path says "attachedRequired".
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(d.Spec.AttachRequired, o.Spec.AttachRequired, sp.Child("attachedRequired"))...)
	return append(errs, apimachineryvalidation.ValidateImmutableField(d.Spec.VolumeLifecycleModes, o.Spec.VolumeLifecycleModes, sp.Child("volumeLifecycleModes"))...)
}

// csiDriverSpec checks the fields defaulting fills (they must be set),
// the enums, the token requests and the update period.
func csiDriverSpec(s *storagev1.CSIDriverSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		val  *bool
	}{
		// Upstream's path says "attachedRequired".
		{"attachedRequired", s.AttachRequired},
		{"podInfoOnMount", s.PodInfoOnMount},
		{"storageCapacity", s.StorageCapacity},
	} {
		if f.val == nil {
			errs = append(errs, field.Required(p.Child(f.name), ""))
		}
	}
	if g := s.FSGroupPolicy; g != nil && !slices.Contains(fsGroupPolicies, string(*g)) {
		errs = append(errs, field.NotSupported(p.Child("fsGroupPolicy"), g, fsGroupPolicies))
	}
	errs = append(errs, tokenRequests(s.TokenRequests, p.Child("tokenRequests"))...)
	for _, m := range s.VolumeLifecycleModes {
		if !slices.Contains(volumeLifecycleModes, string(m)) {
			errs = append(errs, field.NotSupported(p.Child("volumeLifecycleModes"), m, volumeLifecycleModes))
		}
	}
	if s.SELinuxMount == nil {
		errs = append(errs, field.Required(p.Child("seLinuxMount"), ""))
	}
	if n := s.NodeAllocatableUpdatePeriodSeconds; n != nil && *n < minAllocatableUpdatePeriod {
		errs = append(errs, field.Invalid(p.Child("nodeAllocatableUpdatePeriodSeconds"), *n, "must be greater than or equal to 10 seconds"))
	}
	if v := s.ServiceAccountTokenInSecrets; v != nil && len(s.TokenRequests) == 0 {
		errs = append(errs, field.Invalid(p.Child("serviceAccountTokenInSecrets"), *v, "serviceAccountTokenInSecrets is set but no tokenRequests are specified"))
	}
	return errs
}

// tokenRequests requires distinct audiences (one of them may be empty)
// and an expiration, when given, between ten minutes and 2^32 seconds.
func tokenRequests(reqs []storagev1.TokenRequest, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	audiences := sets.New[string]()
	for i, r := range reqs {
		rp := p.Index(i)
		if audiences.Has(r.Audience) {
			errs = append(errs, field.Duplicate(rp.Child("audience"), r.Audience))
			continue
		}
		audiences.Insert(r.Audience)
		if r.ExpirationSeconds == nil {
			continue
		}
		if e := *r.ExpirationSeconds; e < minTokenExpirationSeconds {
			errs = append(errs, field.Invalid(rp.Child("expirationSeconds"), e, "may not specify a duration less than 10 minutes"))
		}
		if e := *r.ExpirationSeconds; e > maxTokenExpirationSeconds {
			errs = append(errs, field.Invalid(rp.Child("expirationSeconds"), e, "may not specify a duration larger than 2^32 seconds"))
		}
	}
	return errs
}

// csiDriverWarningsOnCreate recommends serviceAccountTokenInSecrets to a
// driver that asks for tokens and leaves it unset.
func csiDriverWarningsOnCreate(obj runtime.Object) []string {
	d, ok := obj.(*storagev1.CSIDriver)
	if !ok || len(d.Spec.TokenRequests) == 0 || d.Spec.ServiceAccountTokenInSecrets != nil {
		return nil
	}
	return []string{tokenInSecretsWarning}
}

// csiDriverWarningsOnUpdate gives the same advice, only when the token
// requests changed.
func csiDriverWarningsOnUpdate(obj, old runtime.Object) []string {
	d, ok1 := obj.(*storagev1.CSIDriver)
	o, ok2 := old.(*storagev1.CSIDriver)
	if !ok1 || !ok2 || apiequality.Semantic.DeepEqual(d.Spec.TokenRequests, o.Spec.TokenRequests) {
		return nil
	}
	return csiDriverWarningsOnCreate(d)
}

// csiDriverTable is upstream's NAME ATTACHREQUIRED PODINFOONMOUNT
// STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH MODES AGE.
// TOKENREQUESTS lists the audiences, or <unset>; MODES the lifecycle
// modes, or <none>.
var csiDriverTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "AttachRequired", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"]},
		{Name: "PodInfoOnMount", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"]},
		{Name: "StorageCapacity", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["storageCapacity"]},
		{Name: "TokenRequests", Type: "string", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["tokenRequests"]},
		{Name: "RequiresRepublish", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["requiresRepublish"]},
		{Name: "Modes", Type: "string", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		d, ok := obj.(*storagev1.CSIDriver)
		if !ok {
			return nil
		}
		s := &d.Spec
		modes := make([]string, 0, len(s.VolumeLifecycleModes))
		for _, m := range s.VolumeLifecycleModes {
			modes = append(modes, string(m))
		}
		modesCell := strings.Join(modes, ",")
		if modesCell == "" {
			modesCell = "<none>"
		}
		tokens := "<unset>"
		if s.TokenRequests != nil {
			audiences := make([]string, 0, len(s.TokenRequests))
			for _, t := range s.TokenRequests {
				audiences = append(audiences, t.Audience)
			}
			tokens = strings.Join(audiences, ",")
		}
		return []interface{}{
			d.Name, boolOr(s.AttachRequired, true), boolOr(s.PodInfoOnMount, false), boolOr(s.StorageCapacity, false),
			tokens, boolOr(s.RequiresRepublish, false), modesCell, registry.Age(d),
		}
	},
}

// boolOr returns *b, or def when b is nil.
func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
