package storage

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validVolumeAttributesClass() *storagev1.VolumeAttributesClass {
	return &storagev1.VolumeAttributesClass{
		ObjectMeta: metav1.ObjectMeta{Name: "gold"},
		DriverName: "ebs.csi.aws.com",
		Parameters: map[string]string{"iops": "3000"},
	}
}

func TestVolumeAttributesClassValidate(t *testing.T) {
	type vac = storagev1.VolumeAttributesClass
	tests := []struct {
		name   string
		change func(*vac)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*vac) {}},
		{
			name:   "no driver",
			change: func(c *vac) { c.DriverName = "" },
			want:   []string{"FieldValueRequired driverName"},
		},
		{
			name:   "driver not a qualified name",
			change: func(c *vac) { c.DriverName = "a/b/c" },
			want:   []string{"FieldValueInvalid driverName"},
			detail: `driverName: Invalid value: "a/b/c": a valid label key must consist of`,
		},
		{
			name:   "no parameters",
			change: func(c *vac) { c.Parameters = nil },
			want:   []string{"FieldValueRequired parameters"},
			detail: "parameters: Required value: must contain at least one key/value pair",
		},
		{
			name:   "empty key",
			change: func(c *vac) { c.Parameters = map[string]string{"": "x"} },
			want:   []string{"FieldValueInvalid parameters"},
		},
	}
	r := descriptor(t, "volumeattributesclasses")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validVolumeAttributesClass()
			tt.change(c)
			checkErrs(t, r.Strategy.Validate(c), tt.want, tt.detail)
			checkErrs(t, r.Strategy.ValidateUpdate(c, c.DeepCopy()), tt.want, tt.detail)
		})
	}
}

func TestVolumeAttributesClassValidateUpdate(t *testing.T) {
	type vac = storagev1.VolumeAttributesClass
	tests := []struct {
		name   string
		change func(*vac)
		want   []string
		detail string
	}{
		{name: "labels", change: func(c *vac) { c.Labels = map[string]string{"tier": "gold"} }},
		{
			name:   "driver",
			change: func(c *vac) { c.DriverName = "pd.csi.storage.gke.io" },
			want:   []string{"FieldValueForbidden driverName"},
			detail: "driverName: Forbidden: updates to driverName are forbidden.",
		},
		{
			name:   "parameters",
			change: func(c *vac) { c.Parameters["iops"] = "6000" },
			want:   []string{"FieldValueForbidden parameters"},
			detail: "parameters: Forbidden: updates to parameters are forbidden.",
		},
		{
			// The changes are reported first, then the new object's errors.
			name:   "parameters removed",
			change: func(c *vac) { c.Parameters = nil },
			want:   []string{"FieldValueForbidden parameters", "FieldValueRequired parameters"},
		},
	}
	r := descriptor(t, "volumeattributesclasses")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validVolumeAttributesClass()
			c := old.DeepCopy()
			tt.change(c)
			checkErrs(t, r.Strategy.ValidateUpdate(c, old), tt.want, tt.detail)
		})
	}
}

func TestVolumeAttributesClassTable(t *testing.T) {
	def := validVolumeAttributesClass()
	def.Annotations = map[string]string{"volumeattributesclass.alpha.kubernetes.io/is-default-class": "true"}
	tbl := descriptor(t, "volumeattributesclasses").Table
	for _, tt := range []struct {
		obj  *storagev1.VolumeAttributesClass
		want []interface{}
	}{
		{validVolumeAttributesClass(), []interface{}{"gold", "ebs.csi.aws.com", "<unknown>"}},
		{def, []interface{}{"gold (default)", "ebs.csi.aws.com", "<unknown>"}},
	} {
		if diff := cmp.Diff(tt.want, tbl.Row(tt.obj)); diff != "" {
			t.Errorf("row (-want +got):\n%s", diff)
		}
	}
}
