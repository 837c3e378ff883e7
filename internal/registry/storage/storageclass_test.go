package storage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// validStorageClass is a defaulted class, as the server stores it.
func validStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "standard"},
		Provisioner:       "rancher.io/local-path",
		Parameters:        map[string]string{"type": "ssd"},
		ReclaimPolicy:     ptr(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

func TestStorageClassDefaults(t *testing.T) {
	r := descriptor(t, "storageclasses")
	sc := &storagev1.StorageClass{Provisioner: "p"}
	r.Strategy.Default(sc)
	want := &storagev1.StorageClass{
		Provisioner:       "p",
		ReclaimPolicy:     ptr(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr(storagev1.VolumeBindingImmediate),
	}
	if diff := cmp.Diff(want, sc); diff != "" {
		t.Errorf("defaulted (-want +got):\n%s", diff)
	}

	set := validStorageClass()
	set.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRetain)
	r.Strategy.Default(set)
	if *set.ReclaimPolicy != corev1.PersistentVolumeReclaimRetain || *set.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		t.Errorf("set values changed: %v %v", *set.ReclaimPolicy, *set.VolumeBindingMode)
	}
}

func TestStorageClassValidate(t *testing.T) {
	type sc = storagev1.StorageClass
	manyParams := map[string]string{}
	for i := 0; i <= maxParameters; i++ {
		manyParams[fmt.Sprintf("k%d", i)] = "v"
	}
	term := func(exprs ...corev1.TopologySelectorLabelRequirement) corev1.TopologySelectorTerm {
		return corev1.TopologySelectorTerm{MatchLabelExpressions: exprs}
	}
	zone := corev1.TopologySelectorLabelRequirement{Key: "topology.kubernetes.io/zone", Values: []string{"a", "b"}}
	tests := []struct {
		name   string
		change func(*sc)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*sc) {}},
		{name: "provisioner in capitals", change: func(s *sc) { s.Provisioner = "Example.COM/Disk" }},
		{name: "no parameters", change: func(s *sc) { s.Parameters = nil }},
		{name: "retain", change: func(s *sc) { s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRetain) }},
		{name: "empty reclaim policy", change: func(s *sc) { s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimPolicy("")) }},
		{
			name:   "no provisioner",
			change: func(s *sc) { s.Provisioner = "" },
			want:   []string{"FieldValueRequired provisioner"},
			detail: "provisioner: Required value",
		},
		{
			// The value reported is the lowercased one, as upstream's.
			name:   "provisioner not a qualified name",
			change: func(s *sc) { s.Provisioner = "Bad_Prov/" },
			want:   []string{"FieldValueInvalid provisioner", "FieldValueInvalid provisioner", "FieldValueInvalid provisioner"},
			detail: `provisioner: Invalid value: "bad_prov/": name part must be non-empty`,
		},
		{
			name:   "too many parameters",
			change: func(s *sc) { s.Parameters = manyParams },
			want:   []string{"FieldValueTooLong parameters"},
			detail: "parameters: Too long: may not be more than 512 bytes",
		},
		{
			name:   "parameters too big",
			change: func(s *sc) { s.Parameters = map[string]string{"k": strings.Repeat("x", maxParametersSize)} },
			want:   []string{"FieldValueTooLong parameters"},
			detail: "parameters: Too long: may not be more than 262144 bytes",
		},
		{
			name:   "empty parameter key",
			change: func(s *sc) { s.Parameters = map[string]string{"": "v"} },
			want:   []string{"FieldValueInvalid parameters"},
			detail: `parameters: Invalid value: "": field can not be empty.`,
		},
		{
			name:   "recycle",
			change: func(s *sc) { s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRecycle) },
			want:   []string{"FieldValueNotSupported reclaimPolicy"},
			detail: `reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"`,
		},
		{
			name:   "unknown binding mode",
			change: func(s *sc) { s.VolumeBindingMode = ptr(storagev1.VolumeBindingMode("Later")) },
			want:   []string{"FieldValueNotSupported volumeBindingMode"},
			detail: `volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"`,
		},
		{
			name:   "no binding mode",
			change: func(s *sc) { s.VolumeBindingMode = nil },
			want:   []string{"FieldValueRequired volumeBindingMode"},
		},
		{
			name: "topologies",
			change: func(s *sc) {
				s.AllowedTopologies = []corev1.TopologySelectorTerm{term(zone), term(zone, corev1.TopologySelectorLabelRequirement{Key: "r", Values: []string{"x"}})}
			},
		},
		{
			name: "topology requirement without values, repeated value, bad key",
			change: func(s *sc) {
				s.AllowedTopologies = []corev1.TopologySelectorTerm{term(
					corev1.TopologySelectorLabelRequirement{Key: "a"},
					corev1.TopologySelectorLabelRequirement{Key: "b", Values: []string{"x", "x"}},
					corev1.TopologySelectorLabelRequirement{Key: "-bad-", Values: []string{"x"}},
				)}
			},
			want: []string{
				"FieldValueRequired allowedTopologies[0].matchLabelExpressions[0].values",
				"FieldValueDuplicate allowedTopologies[0].matchLabelExpressions[1].values[1]",
				"FieldValueInvalid allowedTopologies[0].matchLabelExpressions[2].key",
			},
		},
		{
			name:   "topology key repeated in a term",
			change: func(s *sc) { s.AllowedTopologies = []corev1.TopologySelectorTerm{term(zone, zone)} },
			want:   []string{"FieldValueDuplicate allowedTopologies[0].matchLabelExpressions[1].key"},
		},
		{
			name: "same term twice, values in another order",
			change: func(s *sc) {
				other := zone
				other.Values = []string{"b", "a"}
				s.AllowedTopologies = []corev1.TopologySelectorTerm{term(zone), term(other)}
			},
			want:   []string{"FieldValueDuplicate allowedTopologies[1].matchLabelExpressions"},
			detail: `allowedTopologies[1].matchLabelExpressions: Duplicate value: ""`,
		},
		{
			// Upstream's quirk: an empty term equals each of the nil
			// entries its comparison list starts with, one per term.
			name:   "empty term among two",
			change: func(s *sc) { s.AllowedTopologies = []corev1.TopologySelectorTerm{term(zone), {}} },
			want: []string{
				"FieldValueDuplicate allowedTopologies[1].matchLabelExpressions",
				"FieldValueDuplicate allowedTopologies[1].matchLabelExpressions",
			},
		},
	}
	r := descriptor(t, "storageclasses")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validStorageClass()
			tt.change(s)
			checkErrs(t, r.Strategy.Validate(s), tt.want, tt.detail)
			// An update that changes nothing else is checked the same way.
			checkErrs(t, r.Strategy.ValidateUpdate(s, s.DeepCopy()), tt.want, tt.detail)
		})
	}
}

func TestStorageClassValidateUpdate(t *testing.T) {
	type sc = storagev1.StorageClass
	tests := []struct {
		name   string
		change func(*sc)
		want   []string
		detail string
	}{
		{name: "labels, mount options, expansion", change: func(s *sc) {
			s.Labels = map[string]string{"a": "b"}
			s.MountOptions = []string{"ro"}
			s.AllowVolumeExpansion = ptr(true)
		}},
		{
			name:   "provisioner",
			change: func(s *sc) { s.Provisioner = "example.com/other" },
			want:   []string{"FieldValueInvalid provisioner"},
			detail: "provisioner: Invalid value: null: field is immutable",
		},
		{
			name:   "parameters",
			change: func(s *sc) { s.Parameters["type"] = "hdd" },
			want:   []string{"FieldValueInvalid parameters"},
			detail: "parameters: Invalid value: null: field is immutable",
		},
		{
			name:   "parameters removed",
			change: func(s *sc) { s.Parameters = nil },
			want:   []string{"FieldValueInvalid parameters"},
		},
		{
			name:   "reclaim policy",
			change: func(s *sc) { s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRetain) },
			want:   []string{"FieldValueInvalid reclaimPolicy"},
			detail: "reclaimPolicy: Invalid value: null: field is immutable",
		},
		{
			name:   "binding mode",
			change: func(s *sc) { s.VolumeBindingMode = ptr(storagev1.VolumeBindingImmediate) },
			want:   []string{"FieldValueInvalid volumeBindingMode"},
			detail: "volumeBindingMode: Invalid value: null: field is immutable",
		},
		{
			// The new object is checked first, then the changes.
			name:   "provisioner emptied",
			change: func(s *sc) { s.Provisioner = "" },
			want:   []string{"FieldValueRequired provisioner", "FieldValueInvalid provisioner"},
		},
	}
	r := descriptor(t, "storageclasses")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validStorageClass()
			s := old.DeepCopy()
			tt.change(s)
			checkErrs(t, r.Strategy.ValidateUpdate(s, old), tt.want, tt.detail)
		})
	}
}

func TestStorageClassWarnings(t *testing.T) {
	r := descriptor(t, "storageclasses")
	s := validStorageClass()
	s.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
		{Key: "topology.kubernetes.io/zone", Values: []string{"a"}},
		{Key: "failure-domain.beta.kubernetes.io/zone", Values: []string{"a"}},
	}}}
	want := []string{`allowedTopologies[0].matchLabelExpressions[1].key: deprecated since v1.17; use "topology.kubernetes.io/zone" instead`}
	if diff := cmp.Diff(want, r.Strategy.WarningsOnCreate(s)); diff != "" {
		t.Errorf("create warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, r.Strategy.WarningsOnUpdate(s, s)); diff != "" {
		t.Errorf("update warnings (-want +got):\n%s", diff)
	}
	if w := r.Strategy.WarningsOnCreate(validStorageClass()); w != nil {
		t.Errorf("warnings for a plain class: %v", w)
	}
}

func TestStorageClassTable(t *testing.T) {
	annotated := func(k, v string) *storagev1.StorageClass {
		s := validStorageClass()
		s.Annotations = map[string]string{k: v}
		return s
	}
	expandable := validStorageClass()
	expandable.AllowVolumeExpansion = ptr(true)
	expandable.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRetain)
	undefaulted := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "raw"}, Provisioner: "p"}
	tests := []struct {
		name string
		obj  *storagev1.StorageClass
		want []interface{}
	}{
		{"plain", validStorageClass(),
			[]interface{}{"standard", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "<unknown>"}},
		{"default", annotated("storageclass.kubernetes.io/is-default-class", "true"),
			[]interface{}{"standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "<unknown>"}},
		{"beta default", annotated("storageclass.beta.kubernetes.io/is-default-class", "true"),
			[]interface{}{"standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "<unknown>"}},
		{"not default", annotated("storageclass.kubernetes.io/is-default-class", "false"),
			[]interface{}{"standard", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "<unknown>"}},
		{"only exactly true", annotated("storageclass.kubernetes.io/is-default-class", "True"),
			[]interface{}{"standard", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "<unknown>"}},
		{"expandable, retained", expandable,
			[]interface{}{"standard", "rancher.io/local-path", "Retain", "WaitForFirstConsumer", true, "<unknown>"}},
		{"not defaulted", undefaulted,
			[]interface{}{"raw", "p", "Delete", "Immediate", false, "<unknown>"}},
	}
	tbl := descriptor(t, "storageclasses").Table
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tbl.Row(tt.obj)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
