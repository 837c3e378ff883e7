package storage

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validCSIStorageCapacity() *storagev1.CSIStorageCapacity {
	return &storagev1.CSIStorageCapacity{
		ObjectMeta:        metav1.ObjectMeta{Name: "csisc-abcde", Namespace: "kube-system"},
		NodeTopology:      &metav1.LabelSelector{MatchLabels: map[string]string{"topology.kubernetes.io/zone": "a"}},
		StorageClassName:  "standard",
		Capacity:          ptr(resource.MustParse("100Gi")),
		MaximumVolumeSize: ptr(resource.MustParse("10Gi")),
	}
}

func TestCSIStorageCapacityValidate(t *testing.T) {
	type csc = storagev1.CSIStorageCapacity
	tests := []struct {
		name   string
		change func(*csc)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*csc) {}},
		{name: "no topology, no capacity", change: func(c *csc) { c.NodeTopology, c.Capacity = nil, nil }},
		{name: "zero capacity", change: func(c *csc) { c.Capacity = ptr(resource.MustParse("0")) }},
		{name: "negative maximum size is not checked", change: func(c *csc) { c.MaximumVolumeSize = ptr(resource.MustParse("-1")) }},
		{
			name:   "no class",
			change: func(c *csc) { c.StorageClassName = "" },
			want:   []string{"FieldValueInvalid storageClassName"},
		},
		{
			name:   "class not a subdomain",
			change: func(c *csc) { c.StorageClassName = "Fast_SSD" },
			want:   []string{"FieldValueInvalid storageClassName"},
			detail: `storageClassName: Invalid value: "Fast_SSD": a lowercase RFC 1123 subdomain`,
		},
		{
			name:   "negative capacity",
			change: func(c *csc) { c.Capacity = ptr(resource.MustParse("-1Gi")) },
			want:   []string{"FieldValueInvalid capacity"},
			detail: `capacity: Invalid value: "-1Gi": must be greater than or equal to 0`,
		},
		{
			name: "bad selector",
			change: func(c *csc) {
				c.NodeTopology = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: "Near"}}}
			},
			want:   []string{"FieldValueInvalid nodeTopology.matchExpressions[0].operator"},
			detail: `nodeTopology.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator`,
		},
		{
			name:   "bad label value",
			change: func(c *csc) { c.NodeTopology = &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "a b"}} },
			want:   []string{"FieldValueInvalid nodeTopology.matchLabels"},
		},
	}
	r := descriptor(t, "csistoragecapacities")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCSIStorageCapacity()
			tt.change(c)
			checkErrs(t, r.Strategy.Validate(c), tt.want, tt.detail)
		})
	}
}

func TestCSIStorageCapacityValidateUpdate(t *testing.T) {
	type csc = storagev1.CSIStorageCapacity
	tests := []struct {
		name   string
		change func(*csc)
		want   []string
		detail string
	}{
		{name: "capacity", change: func(c *csc) { c.Capacity = ptr(resource.MustParse("50Gi")) }},
		{name: "maximum size", change: func(c *csc) { c.MaximumVolumeSize = nil }},
		{
			name:   "topology",
			change: func(c *csc) { c.NodeTopology.MatchLabels["topology.kubernetes.io/zone"] = "b" },
			want:   []string{"FieldValueInvalid nodeTopology"},
			detail: `nodeTopology: Invalid value: {"matchLabels":{"topology.kubernetes.io/zone":"b"}}: field is immutable`,
		},
		{
			name:   "class",
			change: func(c *csc) { c.StorageClassName = "fast" },
			want:   []string{"FieldValueInvalid storageClassName"},
			detail: `storageClassName: Invalid value: "fast": field is immutable`,
		},
	}
	r := descriptor(t, "csistoragecapacities")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validCSIStorageCapacity()
			c := old.DeepCopy()
			tt.change(c)
			checkErrs(t, r.Strategy.ValidateUpdate(c, old), tt.want, tt.detail)
		})
	}

	// A selector stored with a label value now refused may stay.
	old := validCSIStorageCapacity()
	old.NodeTopology = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a b"}},
	}}
	c := old.DeepCopy()
	c.Capacity = ptr(resource.MustParse("1Gi"))
	checkErrs(t, r.Strategy.ValidateUpdate(c, old), nil, "")
	checkErrs(t, r.Strategy.Validate(c), []string{"FieldValueInvalid nodeTopology.matchExpressions[0].values[0]"}, "")
}

func TestCSIStorageCapacityWarnings(t *testing.T) {
	r := descriptor(t, "csistoragecapacities")
	c := validCSIStorageCapacity()
	c.NodeTopology = &metav1.LabelSelector{
		MatchLabels: map[string]string{"failure-domain.beta.kubernetes.io/zone": "a", "beta.kubernetes.io/os": "linux", "zone": "a"},
		MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "failure-domain.beta.kubernetes.io/region", Operator: metav1.LabelSelectorOpExists},
		},
	}
	want := []string{
		`nodeTopology.matchExpressions[0].key: failure-domain.beta.kubernetes.io/region is deprecated since v1.17; use "topology.kubernetes.io/region" instead`,
		`nodeTopology.matchLabels.beta.kubernetes.io/os: deprecated since v1.14; use "kubernetes.io/os" instead`,
		`nodeTopology.matchLabels.failure-domain.beta.kubernetes.io/zone: deprecated since v1.17; use "topology.kubernetes.io/zone" instead`,
	}
	if diff := cmp.Diff(want, r.Strategy.WarningsOnCreate(c)); diff != "" {
		t.Errorf("create warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, r.Strategy.WarningsOnUpdate(c, c)); diff != "" {
		t.Errorf("update warnings (-want +got):\n%s", diff)
	}
	if w := r.Strategy.WarningsOnCreate(validCSIStorageCapacity()); w != nil {
		t.Errorf("warnings for a plain object: %v", w)
	}
}

func TestCSIStorageCapacityTable(t *testing.T) {
	c := validCSIStorageCapacity()
	c.CreationTimestamp = metav1.NewTime(time.Date(2026, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600)))
	tbl := descriptor(t, "csistoragecapacities").Table
	if tbl.Columns[1].Type != "date" {
		t.Errorf("Created At column type %q, want date", tbl.Columns[1].Type)
	}
	if diff := cmp.Diff([]interface{}{"csisc-abcde", "2026-03-01T11:30:00Z"}, tbl.Row(c)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
