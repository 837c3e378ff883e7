package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validCSINode() *storagev1.CSINode {
	return &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
			{
				Name:         "ebs.csi.aws.com",
				NodeID:       "i-0123456789",
				TopologyKeys: []string{"topology.ebs.csi.aws.com/zone"},
				Allocatable:  &storagev1.VolumeNodeResources{Count: ptr(int32(25))},
			},
			{Name: "hostpath.csi.k8s.io", NodeID: "node-1"},
		}},
	}
}

func TestCSINodeValidate(t *testing.T) {
	type driver = storagev1.CSINodeDriver
	tests := []struct {
		name   string
		change func(*driver)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*driver) {}},
		{name: "driver name in capitals", change: func(d *driver) { d.Name = "EBS.csi.aws.com" }},
		{name: "256 byte node ID", change: func(d *driver) { d.NodeID = strings.Repeat("n", 256) }},
		{name: "no topology keys", change: func(d *driver) { d.TopologyKeys = nil }},
		{name: "zero count", change: func(d *driver) { d.Allocatable.Count = ptr(int32(0)) }},
		{
			name:   "no driver name",
			change: func(d *driver) { d.Name = "" },
			want:   []string{"FieldValueRequired spec.drivers[0].name", "FieldValueInvalid spec.drivers[0].name"},
		},
		{
			name:   "driver name too long",
			change: func(d *driver) { d.Name = strings.Repeat("a", 64) },
			want:   []string{"FieldValueTooLong spec.drivers[0].name"},
			detail: "spec.drivers[0].name: Too long: may not be more than 63 bytes",
		},
		{
			name:   "driver name not a subdomain",
			change: func(d *driver) { d.Name = "ebs_csi" },
			want:   []string{"FieldValueInvalid spec.drivers[0].name"},
			detail: "a lowercase RFC 1123 subdomain must consist of",
		},
		{
			name:   "no node ID",
			change: func(d *driver) { d.NodeID = "" },
			want:   []string{"FieldValueRequired spec.drivers[0].nodeID"},
		},
		{
			name:   "node ID too long",
			change: func(d *driver) { d.NodeID = strings.Repeat("n", 257) },
			want:   []string{"FieldValueInvalid spec.drivers[0].nodeID"},
			detail: "must be 256 characters or less",
		},
		{
			name:   "negative count",
			change: func(d *driver) { d.Allocatable.Count = ptr(int32(-1)) },
			want:   []string{"FieldValueInvalid spec.drivers[0].allocatable.count"},
			detail: "spec.drivers[0].allocatable.count: Invalid value: -1: must be greater than or equal to 0",
		},
		{
			name:   "same driver twice",
			change: func(d *driver) { d.Name = "hostpath.csi.k8s.io" },
			want:   []string{"FieldValueDuplicate spec.drivers[1].name"},
		},
		{
			// Upstream reports topology key errors at the driver.
			name:   "topology keys: empty, repeated, not qualified",
			change: func(d *driver) { d.TopologyKeys = []string{"", "zone", "zone", "a/b/c"} },
			want: []string{
				"FieldValueRequired spec.drivers[0]",
				"FieldValueInvalid spec.drivers[0]",
				"FieldValueInvalid spec.drivers[0]",
				"FieldValueDuplicate spec.drivers[0]",
				"FieldValueInvalid spec.drivers[0]",
			},
			detail: `spec.drivers[0]: Duplicate value: "zone"`,
		},
	}
	r := descriptor(t, "csinodes")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := validCSINode()
			tt.change(&n.Spec.Drivers[0])
			checkErrs(t, r.Strategy.Validate(n), tt.want, tt.detail)
		})
	}
}

func TestCSINodeValidateUpdate(t *testing.T) {
	type spec = storagev1.CSINodeSpec
	tests := []struct {
		name   string
		change func(*spec)
		want   []string
		detail string
	}{
		{name: "allocatable count changed", change: func(s *spec) { s.Drivers[0].Allocatable.Count = ptr(int32(10)) }},
		{name: "allocatable removed", change: func(s *spec) { s.Drivers[0].Allocatable = nil }},
		{name: "driver removed", change: func(s *spec) { s.Drivers = s.Drivers[1:] }},
		{name: "driver added", change: func(s *spec) {
			s.Drivers = append(s.Drivers, storagev1.CSINodeDriver{Name: "nfs.csi.k8s.io", NodeID: "node-1"})
		}},
		{
			name:   "node ID changed",
			change: func(s *spec) { s.Drivers[1].NodeID = "other" },
			want:   []string{"FieldValueInvalid spec.drivers"},
			detail: `spec.drivers: Invalid value: {"name":"hostpath.csi.k8s.io","nodeID":"other","topologyKeys":null}: field is immutable`,
		},
		{
			name:   "topology keys changed",
			change: func(s *spec) { s.Drivers[0].TopologyKeys = nil },
			want:   []string{"FieldValueInvalid spec.drivers"},
		},
	}
	r := descriptor(t, "csinodes")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validCSINode()
			n := old.DeepCopy()
			tt.change(&n.Spec)
			checkErrs(t, r.Strategy.ValidateUpdate(n, old), tt.want, tt.detail)
		})
	}
}

func TestCSINodePrepare(t *testing.T) {
	ctx := context.Background()
	r := descriptor(t, "csinodes")
	health := storagev1.CSINodeStatus{StorageHealth: []storagev1.StorageHealth{{
		Name:             "ebs.csi.aws.com",
		HealthConditions: []storagev1.StorageHealthCondition{{Status: storagev1.StorageDegraded, Reason: "Slow"}},
	}}}

	n := validCSINode()
	n.Status = health
	r.Strategy.PrepareForCreate(ctx, n)
	if diff := cmp.Diff(storagev1.CSINodeStatus{}, n.Status); diff != "" {
		t.Errorf("status after create (-want +got):\n%s", diff)
	}
	if n.Generation != 0 {
		t.Errorf("generation after create %d, want 0", n.Generation)
	}

	old := validCSINode()
	old.Generation = 4
	upd := old.DeepCopy()
	upd.Status = health
	upd.Spec.Drivers[0].Allocatable.Count = ptr(int32(1))
	r.Strategy.PrepareForUpdate(ctx, upd, old)
	if diff := cmp.Diff(old.Status, upd.Status); diff != "" {
		t.Errorf("status after update (-want +got):\n%s", diff)
	}
	if upd.Generation != 4 {
		t.Errorf("generation after update %d, want 4", upd.Generation)
	}
}

func TestCSINodeTable(t *testing.T) {
	tbl := descriptor(t, "csinodes").Table
	if diff := cmp.Diff([]interface{}{"node-1", int64(2), "<unknown>"}, tbl.Row(validCSINode())); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	empty := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "node-2"}}
	if diff := cmp.Diff([]interface{}{"node-2", int64(0), "<unknown>"}, tbl.Row(empty)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
