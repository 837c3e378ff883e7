package storage

import (
	"context"
	"math"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

const exactlyOneSource = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"

var pvAccessModes = []string{
	string(corev1.ReadOnlyMany), string(corev1.ReadWriteMany), string(corev1.ReadWriteOnce), string(corev1.ReadWriteOncePod),
}

// prepareVolumeAttachmentForCreate clears status; generation is left as
// sent, as upstream.
func prepareVolumeAttachmentForCreate(_ context.Context, obj runtime.Object) {
	if va, ok := obj.(*storagev1.VolumeAttachment); ok {
		va.Status = storagev1.VolumeAttachmentStatus{}
	}
}

// prepareVolumeAttachmentForUpdate keeps status as stored. The spec may
// not change, so generation is never bumped.
func prepareVolumeAttachmentForUpdate(_ context.Context, obj, old runtime.Object) {
	va, ok1 := obj.(*storagev1.VolumeAttachment)
	o, ok2 := old.(*storagev1.VolumeAttachment)
	if !ok1 || !ok2 {
		return
	}
	va.Status = o.Status
}

// prepareVolumeAttachmentForStatusUpdate keeps everything but status, as
// the registry's default does, and also the labels and annotations, as
// upstream's status strategy does (ResetObjectMetaForStatus).
func prepareVolumeAttachmentForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	va, ok1 := obj.(*storagev1.VolumeAttachment)
	o, ok2 := old.(*storagev1.VolumeAttachment)
	if !ok1 || !ok2 {
		return
	}
	va.Labels, va.Annotations = o.Labels, o.Annotations
}

// validateVolumeAttachmentCreate checks a new attachment. On top of what
// every write checks, a new one's attacher must be a CSI driver name and
// its persistent volume name a DNS subdomain: upstream tightened these for
// v1 objects created after objects without them were stored.
func validateVolumeAttachmentCreate(obj runtime.Object) field.ErrorList {
	va, ok := obj.(*storagev1.VolumeAttachment)
	if !ok {
		return nil
	}
	sp := field.NewPath("spec")
	// An empty attacher is 1.37's declarative Required alone.
	errs := volumeAttachment(va, va.Spec.Attacher != "")
	if name := va.Spec.Source.PersistentVolumeName; name != nil {
		errs = append(errs, dnsSubdomain(*name, sp.Child("source", "persistentVolumeName"))...)
	}
	return append(errs, attacher(va.Spec.Attacher, sp.Child("attacher"))...)
}

// validateVolumeAttachmentUpdate checks a write to the main resource or
// to status: the object as every write is checked, and an unchanged spec.
func validateVolumeAttachmentUpdate(obj, old runtime.Object) field.ErrorList {
	va, ok1 := obj.(*storagev1.VolumeAttachment)
	o, ok2 := old.(*storagev1.VolumeAttachment)
	if !ok1 || !ok2 {
		return nil
	}
	errs := volumeAttachment(va, true)
	if !apiequality.Semantic.DeepEqual(va.Spec, o.Spec) {
		errs = append(errs, immutable(field.NewPath("spec")))
	}
	return errs
}

// volumeAttachment checks what upstream checks on every write: an
// attacher (when requireAttacher), exactly one source, the node name and
// the status.
func volumeAttachment(va *storagev1.VolumeAttachment, requireAttacher bool) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("spec")
	if requireAttacher && va.Spec.Attacher == "" {
		errs = append(errs, field.Required(sp.Child("attacher"), ""))
	}
	src, srcPath := &va.Spec.Source, sp.Child("source")
	switch {
	case src.InlineVolumeSpec == nil && src.PersistentVolumeName == nil:
		errs = append(errs, field.Required(srcPath, exactlyOneSource))
	case src.InlineVolumeSpec != nil && src.PersistentVolumeName != nil:
		errs = append(errs, field.Forbidden(srcPath, exactlyOneSource))
	case src.PersistentVolumeName != nil:
		if *src.PersistentVolumeName == "" {
			errs = append(errs, field.Required(srcPath.Child("persistentVolumeName"), "must specify non empty persistentVolumeName"))
		}
	default:
		errs = append(errs, inlineVolumeSpec(src.InlineVolumeSpec, srcPath.Child("inlineVolumeSpec"))...)
	}
	errs = append(errs, dnsSubdomain(va.Spec.NodeName, sp.Child("nodeName"))...)

	st, stp := &va.Status, field.NewPath("status")
	size := 0
	for k, v := range st.AttachmentMetadata {
		size += len(k) + len(v)
	}
	if size > maxAttachMetadataSize {
		errs = append(errs, field.TooLong(stp.Child("attachmentMetadata"), "", maxAttachMetadataSize))
	}
	errs = append(errs, volumeError(st.AttachError, stp.Child("attachError"))...)
	return append(errs, volumeError(st.DetachError, stp.Child("detachError"))...)
}

// volumeError limits the message to 1024 bytes and the error code to
// non-negative values. Upstream reports a long message with the limit of
// attachmentMetadata, "may not be more than 262144 bytes"; so does skiff.
func volumeError(e *storagev1.VolumeError, p *field.Path) field.ErrorList {
	if e == nil {
		return nil
	}
	var errs field.ErrorList
	if len(e.Message) > maxVolumeErrorMessage {
		errs = append(errs, field.TooLong(p.Child("message"), "", maxAttachMetadataSize))
	}
	if c := e.ErrorCode; c != nil && *c < 0 {
		errs = append(errs, field.Invalid(p.Child("errorCode"), *c, validation.InclusiveRangeError(0, math.MaxInt32)))
	}
	return errs
}

// attacher is 1.37's declarative check of a new attachment's attacher:
// required alone when empty, else at most 63 bytes and a DNS subdomain in
// any case.
func attacher(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if len(name) > maxCSIDriverName {
		errs = append(errs, field.TooLong(p, name, maxCSIDriverName))
	}
	for _, msg := range content.IsDNS1123SubdomainCaseless(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// inlineVolumeSpec checks a persistent volume spec translated from a
// pod's inline volume (CSI migration), with upstream's rules for that
// context: a CSI source and access modes are required; claimRef,
// capacity, nodeAffinity and storageClassName are forbidden; the reclaim
// policy may only be Retain and the volume mode only Filesystem. Of the
// sources, only the CSI one's fields are checked.
func inlineVolumeSpec(s *corev1.PersistentVolumeSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	const inline = "may not be specified in the context of inline volumes"
	if s.ClaimRef != nil {
		errs = append(errs, field.Forbidden(p.Child("claimRef"), inline))
	}
	if len(s.Capacity) != 0 {
		errs = append(errs, field.Forbidden(p.Child("capacity"), inline))
	}
	if s.CSI == nil {
		errs = append(errs, field.Required(p.Child("csi"), "has to be specified in the context of inline volumes"))
	}

	mp := p.Child("accessModes")
	if len(s.AccessModes) == 0 {
		errs = append(errs, field.Required(mp, ""))
	}
	rwop, others := false, false
	for _, m := range s.AccessModes {
		switch {
		case !slices.Contains(pvAccessModes, string(m)):
			errs = append(errs, field.NotSupported(mp, m, pvAccessModes))
		case m == corev1.ReadWriteOncePod:
			rwop = true
		default:
			others = true
		}
	}
	if rwop && others {
		errs = append(errs, field.Forbidden(mp, "may not use ReadWriteOncePod with other access modes"))
	}
	if r := s.PersistentVolumeReclaimPolicy; r != "" && r != corev1.PersistentVolumeReclaimRetain {
		errs = append(errs, field.Forbidden(p.Child("persistentVolumeReclaimPolicy"), "may only be "+string(corev1.PersistentVolumeReclaimRetain)+" in the context of inline volumes"))
	}
	if s.NodeAffinity != nil {
		errs = append(errs, field.Forbidden(p.Child("nodeAffinity"), inline))
	}
	errs = append(errs, volumeSources(&s.PersistentVolumeSource, p)...)
	if s.StorageClassName != "" {
		errs = append(errs, field.Forbidden(p.Child("storageClassName"), inline))
	}
	if m := s.VolumeMode; m != nil && *m != corev1.PersistentVolumeFilesystem {
		errs = append(errs, field.Forbidden(p.Child("volumeMode"), "may not specify volumeMode other than "+string(corev1.PersistentVolumeFilesystem)+" in the context of inline volumes"))
	}
	return errs
}

// volumeSources requires one volume source and refuses a second one (the
// CSI source comes last, as in upstream's order), and checks the CSI one.
func volumeSources(src *corev1.PersistentVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	v := reflect.ValueOf(*src)
	n := 0
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if n > 0 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		if v.Type().Field(i).Name == "CSI" {
			errs = append(errs, csiVolumeSource(src.CSI, p.Child("csi"))...)
		}
	}
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a volume type"))
	}
	return errs
}

// csiVolumeSource checks a CSI persistent volume source: the driver name,
// a volume handle, and each secret reference's name and namespace.
func csiVolumeSource(csi *corev1.CSIPersistentVolumeSource, p *field.Path) field.ErrorList {
	errs := csiDriverName(csi.Driver, p.Child("driver"))
	if csi.VolumeHandle == "" {
		errs = append(errs, field.Required(p.Child("volumeHandle"), ""))
	}
	for _, ref := range []struct {
		name string
		ref  *corev1.SecretReference
	}{
		{"controllerPublishSecretRef", csi.ControllerPublishSecretRef},
		{"controllerExpandSecretRef", csi.ControllerExpandSecretRef},
		{"nodePublishSecretRef", csi.NodePublishSecretRef},
		{"nodeExpandSecretRef", csi.NodeExpandSecretRef},
	} {
		if ref.ref == nil {
			continue
		}
		rp := p.Child(ref.name)
		if ref.ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		} else {
			errs = append(errs, validationMessages(content.IsDNS1123Subdomain(ref.ref.Name), ref.ref.Name, rp.Child("name"))...)
		}
		if ref.ref.Namespace == "" {
			errs = append(errs, field.Required(rp.Child("namespace"), ""))
		} else {
			errs = append(errs, validationMessages(content.IsDNS1123Label(ref.ref.Namespace), ref.ref.Namespace, rp.Child("namespace"))...)
		}
	}
	return errs
}

// validationMessages turns a content check's messages into Invalid errors.
func validationMessages(msgs []string, value string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

// volumeAttachmentTable is upstream's NAME ATTACHER PV NODE ATTACHED AGE.
// PV is empty for an inline volume.
var volumeAttachmentTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		// Upstream formats the attacher as a name too.
		{Name: "Attacher", Type: "string", Format: "name", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"]},
		{Name: "PV", Type: "string", Description: storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"]},
		{Name: "Node", Type: "string", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"]},
		{Name: "Attached", Type: "boolean", Description: storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		va, ok := obj.(*storagev1.VolumeAttachment)
		if !ok {
			return nil
		}
		pv := ""
		if va.Spec.Source.PersistentVolumeName != nil {
			pv = *va.Spec.Source.PersistentVolumeName
		}
		return []interface{}{va.Name, va.Spec.Attacher, pv, va.Spec.NodeName, va.Status.Attached, registry.Age(va)}
	},
}
