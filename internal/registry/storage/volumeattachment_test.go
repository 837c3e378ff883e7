package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validVolumeAttachment() *storagev1.VolumeAttachment {
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "csi-0123abcd"},
		Spec: storagev1.VolumeAttachmentSpec{
			Attacher: "ebs.csi.aws.com",
			Source:   storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr("pvc-1234")},
			NodeName: "node-1",
		},
	}
}

// validInline is an inline volume translated for CSI migration.
func validInline() *corev1.PersistentVolumeSpec {
	return &corev1.PersistentVolumeSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
			Driver:       "ebs.csi.aws.com",
			VolumeHandle: "vol-1",
		}},
	}
}

func TestVolumeAttachmentValidateCreate(t *testing.T) {
	type va = storagev1.VolumeAttachment
	inline := func(change func(*corev1.PersistentVolumeSpec)) func(*va) {
		return func(v *va) {
			s := validInline()
			change(s)
			v.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: s}
		}
	}
	tests := []struct {
		name   string
		change func(*va)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*va) {}},
		{name: "attacher in capitals", change: func(v *va) { v.Spec.Attacher = "EBS.csi.aws.com" }},
		{name: "inline", change: inline(func(*corev1.PersistentVolumeSpec) {})},
		{name: "inline, retained filesystem", change: inline(func(s *corev1.PersistentVolumeSpec) {
			s.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
			s.VolumeMode = ptr(corev1.PersistentVolumeFilesystem)
			s.CSI.NodePublishSecretRef = &corev1.SecretReference{Name: "creds", Namespace: "kube-system"}
		})},
		{
			// 1.37's declarative Required, alone.
			name:   "no attacher",
			change: func(v *va) { v.Spec.Attacher = "" },
			want:   []string{"FieldValueRequired spec.attacher"},
			detail: "spec.attacher: Required value",
		},
		{
			name:   "attacher too long",
			change: func(v *va) { v.Spec.Attacher = strings.Repeat("a", 64) },
			want:   []string{"FieldValueTooLong spec.attacher"},
			detail: "spec.attacher: Too long: may not be more than 63 bytes",
		},
		{
			name:   "attacher not a subdomain",
			change: func(v *va) { v.Spec.Attacher = "ebs_csi" },
			want:   []string{"FieldValueInvalid spec.attacher"},
			detail: `spec.attacher: Invalid value: "ebs_csi": an RFC 1123 subdomain must consist of alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
		},
		{
			name:   "no source",
			change: func(v *va) { v.Spec.Source = storagev1.VolumeAttachmentSource{} },
			want:   []string{"FieldValueRequired spec.source"},
			detail: "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName",
		},
		{
			name:   "both sources",
			change: func(v *va) { v.Spec.Source.InlineVolumeSpec = validInline() },
			want:   []string{"FieldValueForbidden spec.source"},
			detail: "spec.source: Forbidden: must specify exactly one of inlineVolumeSpec and persistentVolumeName",
		},
		{
			// Required from the source check, Invalid from the name check
			// of new v1 objects: upstream reports both.
			name:   "empty volume name",
			change: func(v *va) { v.Spec.Source.PersistentVolumeName = ptr("") },
			want:   []string{"FieldValueRequired spec.source.persistentVolumeName", "FieldValueInvalid spec.source.persistentVolumeName"},
			detail: "must specify non empty persistentVolumeName",
		},
		{
			name:   "volume name not a subdomain",
			change: func(v *va) { v.Spec.Source.PersistentVolumeName = ptr("PV_1") },
			want:   []string{"FieldValueInvalid spec.source.persistentVolumeName"},
		},
		{
			name:   "no node",
			change: func(v *va) { v.Spec.NodeName = "" },
			want:   []string{"FieldValueInvalid spec.nodeName"},
			detail: `spec.nodeName: Invalid value: "": a lowercase RFC 1123 subdomain`,
		},
		{
			name: "inline: forbidden fields",
			change: inline(func(s *corev1.PersistentVolumeSpec) {
				s.ClaimRef = &corev1.ObjectReference{Name: "c"}
				s.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
				s.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
				s.NodeAffinity = &corev1.VolumeNodeAffinity{}
				s.StorageClassName = "fast"
				s.VolumeMode = ptr(corev1.PersistentVolumeBlock)
			}),
			want: []string{
				"FieldValueForbidden spec.source.inlineVolumeSpec.claimRef",
				"FieldValueForbidden spec.source.inlineVolumeSpec.capacity",
				"FieldValueForbidden spec.source.inlineVolumeSpec.persistentVolumeReclaimPolicy",
				"FieldValueForbidden spec.source.inlineVolumeSpec.nodeAffinity",
				"FieldValueForbidden spec.source.inlineVolumeSpec.storageClassName",
				"FieldValueForbidden spec.source.inlineVolumeSpec.volumeMode",
			},
			detail: "spec.source.inlineVolumeSpec.persistentVolumeReclaimPolicy: Forbidden: may only be Retain in the context of inline volumes",
		},
		{
			name:   "inline: no CSI source",
			change: inline(func(s *corev1.PersistentVolumeSpec) { s.CSI = nil }),
			want: []string{
				"FieldValueRequired spec.source.inlineVolumeSpec.csi",
				"FieldValueRequired spec.source.inlineVolumeSpec",
			},
			detail: "spec.source.inlineVolumeSpec: Required value: must specify a volume type",
		},
		{
			name:   "inline: another source too",
			change: inline(func(s *corev1.PersistentVolumeSpec) { s.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"} }),
			want:   []string{"FieldValueForbidden spec.source.inlineVolumeSpec.csi"},
			detail: "spec.source.inlineVolumeSpec.csi: Forbidden: may not specify more than 1 volume type",
		},
		{
			name: "inline: access modes",
			change: inline(func(s *corev1.PersistentVolumeSpec) {
				s.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadWriteOnce, "Sometimes"}
			}),
			want: []string{
				"FieldValueNotSupported spec.source.inlineVolumeSpec.accessModes",
				"FieldValueForbidden spec.source.inlineVolumeSpec.accessModes",
			},
		},
		{
			name:   "inline: no access modes",
			change: inline(func(s *corev1.PersistentVolumeSpec) { s.AccessModes = nil }),
			want:   []string{"FieldValueRequired spec.source.inlineVolumeSpec.accessModes"},
		},
		{
			name: "inline: CSI source fields",
			change: inline(func(s *corev1.PersistentVolumeSpec) {
				s.CSI.Driver = ""
				s.CSI.VolumeHandle = ""
				s.CSI.ControllerPublishSecretRef = &corev1.SecretReference{}
				s.CSI.NodeStageSecretRef = &corev1.SecretReference{Name: "not.checked"}
				s.CSI.NodeExpandSecretRef = &corev1.SecretReference{Name: "Bad_Name", Namespace: "bad.ns"}
			}),
			want: []string{
				"FieldValueRequired spec.source.inlineVolumeSpec.csi.driver",
				"FieldValueInvalid spec.source.inlineVolumeSpec.csi.driver",
				"FieldValueRequired spec.source.inlineVolumeSpec.csi.volumeHandle",
				"FieldValueRequired spec.source.inlineVolumeSpec.csi.controllerPublishSecretRef.name",
				"FieldValueRequired spec.source.inlineVolumeSpec.csi.controllerPublishSecretRef.namespace",
				"FieldValueInvalid spec.source.inlineVolumeSpec.csi.nodeExpandSecretRef.name",
				"FieldValueInvalid spec.source.inlineVolumeSpec.csi.nodeExpandSecretRef.namespace",
			},
		},
		{
			name: "status is not checked on create",
			change: func(v *va) {
				v.Status.AttachError = &storagev1.VolumeError{ErrorCode: ptr(int32(-1))}
			},
		},
	}
	r := descriptor(t, "volumeattachments")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := validVolumeAttachment()
			tt.change(v)
			r.Strategy.PrepareForCreate(context.Background(), v)
			checkErrs(t, r.Strategy.Validate(v), tt.want, tt.detail)
		})
	}
}

func TestVolumeAttachmentValidateUpdate(t *testing.T) {
	type va = storagev1.VolumeAttachment
	tests := []struct {
		name   string
		change func(*va)
		want   []string
		detail string
	}{
		{name: "labels", change: func(v *va) { v.Labels = map[string]string{"a": "b"} }},
		{
			name:   "node",
			change: func(v *va) { v.Spec.NodeName = "node-2" },
			want:   []string{"FieldValueInvalid spec"},
			detail: "spec: Invalid value: null: field is immutable",
		},
		{
			// The new object is checked as every write is, then the spec.
			name:   "attacher emptied",
			change: func(v *va) { v.Spec.Attacher = "" },
			want:   []string{"FieldValueRequired spec.attacher", "FieldValueInvalid spec"},
		},
	}
	r := descriptor(t, "volumeattachments")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validVolumeAttachment()
			v := old.DeepCopy()
			tt.change(v)
			checkErrs(t, r.Strategy.ValidateUpdate(v, old), tt.want, tt.detail)
		})
	}

	// Only new objects get the attacher's name check: a stored one that
	// fails it can still be updated.
	old := validVolumeAttachment()
	old.Spec.Attacher = "ebs_csi"
	checkErrs(t, r.Strategy.ValidateUpdate(old.DeepCopy(), old), nil, "")
}

func TestVolumeAttachmentValidateStatus(t *testing.T) {
	type status = storagev1.VolumeAttachmentStatus
	tests := []struct {
		name   string
		status status
		want   []string
		detail string
	}{
		{name: "attached", status: status{
			Attached:           true,
			AttachmentMetadata: map[string]string{"devicePath": "/dev/xvdba"},
			DetachError:        &storagev1.VolumeError{Message: "busy", ErrorCode: ptr(int32(0))},
		}},
		{
			name:   "metadata too big",
			status: status{AttachmentMetadata: map[string]string{"k": strings.Repeat("x", maxAttachMetadataSize)}},
			want:   []string{"FieldValueTooLong status.attachmentMetadata"},
			detail: "status.attachmentMetadata: Too long: may not be more than 262144 bytes",
		},
		{
			// Upstream reports the metadata limit for a long message.
			name:   "error message too long",
			status: status{AttachError: &storagev1.VolumeError{Message: strings.Repeat("x", 1025)}},
			want:   []string{"FieldValueTooLong status.attachError.message"},
			detail: "status.attachError.message: Too long: may not be more than 262144 bytes",
		},
		{
			name:   "negative error code",
			status: status{DetachError: &storagev1.VolumeError{ErrorCode: ptr(int32(-5))}},
			want:   []string{"FieldValueInvalid status.detachError.errorCode"},
			detail: "status.detachError.errorCode: Invalid value: -5: must be between 0 and 2147483647, inclusive",
		},
	}
	r := descriptor(t, "volumeattachments")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validVolumeAttachment()
			v := old.DeepCopy()
			v.Status = tt.status
			r.Strategy.PrepareForStatusUpdate(context.Background(), v, old)
			checkErrs(t, r.Strategy.ValidateStatusUpdate(v, old), tt.want, tt.detail)
			// A main write checks status too (it keeps the stored one).
			checkErrs(t, r.Strategy.ValidateUpdate(v, old), tt.want, tt.detail)
		})
	}
}

func TestVolumeAttachmentPrepare(t *testing.T) {
	ctx := context.Background()
	r := descriptor(t, "volumeattachments")
	attached := storagev1.VolumeAttachmentStatus{Attached: true, AttachmentMetadata: map[string]string{"a": "b"}}

	v := validVolumeAttachment()
	v.Status = attached
	r.Strategy.PrepareForCreate(ctx, v)
	if diff := cmp.Diff(storagev1.VolumeAttachmentStatus{}, v.Status); diff != "" {
		t.Errorf("status after create (-want +got):\n%s", diff)
	}
	if v.Generation != 0 {
		t.Errorf("generation after create %d, want 0", v.Generation)
	}

	old := validVolumeAttachment()
	old.Status = attached
	old.Labels = map[string]string{"app": "db"}
	old.Finalizers = []string{"external-attacher/ebs-csi-aws-com"}

	main := old.DeepCopy()
	main.Status = storagev1.VolumeAttachmentStatus{}
	main.Labels = map[string]string{"new": "label"}
	r.Strategy.PrepareForUpdate(ctx, main, old)
	if diff := cmp.Diff(old.Status, main.Status); diff != "" {
		t.Errorf("main write changed status (-want +got):\n%s", diff)
	}
	if main.Labels["new"] != "label" {
		t.Errorf("main write lost its labels: %v", main.Labels)
	}

	st := old.DeepCopy()
	st.Spec.NodeName = "node-2"
	st.Labels = nil
	st.Finalizers = nil
	st.Status = storagev1.VolumeAttachmentStatus{Attached: false, DetachError: &storagev1.VolumeError{Message: "busy"}}
	want := old.DeepCopy()
	want.Status = st.Status
	r.Strategy.PrepareForStatusUpdate(ctx, st, old)
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("status write (-want +got):\n%s", diff)
	}
}

func TestVolumeAttachmentTable(t *testing.T) {
	attached := validVolumeAttachment()
	attached.Status.Attached = true
	inline := validVolumeAttachment()
	inline.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: validInline()}
	tests := []struct {
		name string
		obj  *storagev1.VolumeAttachment
		want []interface{}
	}{
		{"attached", attached, []interface{}{"csi-0123abcd", "ebs.csi.aws.com", "pvc-1234", "node-1", true, "<unknown>"}},
		{"inline", inline, []interface{}{"csi-0123abcd", "ebs.csi.aws.com", "", "node-1", false, "<unknown>"}},
	}
	tbl := descriptor(t, "volumeattachments").Table
	if tbl.Columns[1].Format != "name" {
		t.Errorf("attacher column format %q, want name (upstream's)", tbl.Columns[1].Format)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tbl.Row(tt.obj)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
