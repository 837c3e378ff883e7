package storage

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// validCSIDriver is a defaulted driver, as the server stores it.
func validCSIDriver() *storagev1.CSIDriver {
	d := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: "ebs.csi.aws.com"},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired: ptr(true),
			PodInfoOnMount: ptr(false),
		},
	}
	defaultCSIDriver(d)
	return d
}

func TestCSIDriverDefaults(t *testing.T) {
	r := descriptor(t, "csidrivers")
	d := &storagev1.CSIDriver{}
	r.Strategy.Default(d)
	want := storagev1.CSIDriverSpec{
		AttachRequired:       ptr(true),
		PodInfoOnMount:       ptr(false),
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		StorageCapacity:      ptr(false),
		FSGroupPolicy:        ptr(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy),
		RequiresRepublish:    ptr(false),
		SELinuxMount:         ptr(false),
	}
	if diff := cmp.Diff(want, d.Spec); diff != "" {
		t.Errorf("defaulted (-want +got):\n%s", diff)
	}

	set := storagev1.CSIDriverSpec{
		AttachRequired:       ptr(false),
		PodInfoOnMount:       ptr(true),
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral},
		StorageCapacity:      ptr(true),
		FSGroupPolicy:        ptr(storagev1.FileFSGroupPolicy),
		RequiresRepublish:    ptr(true),
		SELinuxMount:         ptr(true),
	}
	d = &storagev1.CSIDriver{Spec: *set.DeepCopy()}
	r.Strategy.Default(d)
	if diff := cmp.Diff(set, d.Spec); diff != "" {
		t.Errorf("set values changed (-want +got):\n%s", diff)
	}
}

func TestCSIDriverValidate(t *testing.T) {
	type spec = storagev1.CSIDriverSpec
	tests := []struct {
		name   string
		change func(*spec)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*spec) {}},
		{name: "both modes", change: func(s *spec) {
			s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral}
		}},
		{name: "token requests", change: func(s *spec) {
			s.TokenRequests = []storagev1.TokenRequest{{Audience: ""}, {Audience: "vault", ExpirationSeconds: ptr(int64(600))}}
			s.ServiceAccountTokenInSecrets = ptr(true)
		}},
		{name: "update period 10s", change: func(s *spec) { s.NodeAllocatableUpdatePeriodSeconds = ptr(int64(10)) }},
		{
			// Upstream's path says "attachedRequired".
			name: "required fields unset",
			change: func(s *spec) {
				s.AttachRequired, s.PodInfoOnMount, s.StorageCapacity, s.SELinuxMount = nil, nil, nil, nil
			},
			want: []string{
				"FieldValueRequired spec.attachedRequired",
				"FieldValueRequired spec.podInfoOnMount",
				"FieldValueRequired spec.storageCapacity",
				"FieldValueRequired spec.seLinuxMount",
			},
		},
		{
			name:   "fsGroupPolicy",
			change: func(s *spec) { s.FSGroupPolicy = ptr(storagev1.FSGroupPolicy("Always")) },
			want:   []string{"FieldValueNotSupported spec.fsGroupPolicy"},
			detail: `spec.fsGroupPolicy: Unsupported value: "Always": supported values: "File", "None", "ReadWriteOnceWithFSType"`,
		},
		{
			name:   "lifecycle mode",
			change: func(s *spec) { s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{"no-such-mode"} },
			want:   []string{"FieldValueNotSupported spec.volumeLifecycleModes"},
			detail: `spec.volumeLifecycleModes: Unsupported value: "no-such-mode": supported values: "Persistent", "Ephemeral"`,
		},
		{
			name: "audience repeated",
			change: func(s *spec) {
				s.TokenRequests = []storagev1.TokenRequest{{Audience: "a"}, {Audience: "a", ExpirationSeconds: ptr(int64(1))}}
			},
			want:   []string{"FieldValueDuplicate spec.tokenRequests[1].audience"},
			detail: `spec.tokenRequests[1].audience: Duplicate value: "a"`,
		},
		{
			name: "expiration too short",
			change: func(s *spec) {
				s.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptr(int64(599))}}
			},
			want:   []string{"FieldValueInvalid spec.tokenRequests[0].expirationSeconds"},
			detail: "spec.tokenRequests[0].expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes",
		},
		{
			name: "expiration too long",
			change: func(s *spec) {
				s.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptr(int64(1<<32 + 1))}}
			},
			want:   []string{"FieldValueInvalid spec.tokenRequests[0].expirationSeconds"},
			detail: "may not specify a duration larger than 2^32 seconds",
		},
		{
			name:   "update period too short",
			change: func(s *spec) { s.NodeAllocatableUpdatePeriodSeconds = ptr(int64(9)) },
			want:   []string{"FieldValueInvalid spec.nodeAllocatableUpdatePeriodSeconds"},
			detail: "spec.nodeAllocatableUpdatePeriodSeconds: Invalid value: 9: must be greater than or equal to 10 seconds",
		},
		{
			name:   "tokens in secrets without token requests",
			change: func(s *spec) { s.ServiceAccountTokenInSecrets = ptr(false) },
			want:   []string{"FieldValueInvalid spec.serviceAccountTokenInSecrets"},
			detail: "serviceAccountTokenInSecrets is set but no tokenRequests are specified",
		},
	}
	r := descriptor(t, "csidrivers")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validCSIDriver()
			tt.change(&d.Spec)
			checkErrs(t, r.Strategy.Validate(d), tt.want, tt.detail)
			checkErrs(t, r.Strategy.ValidateUpdate(d, d.DeepCopy()), tt.want, tt.detail)
		})
	}
}

func TestCSIDriverValidateUpdate(t *testing.T) {
	type spec = storagev1.CSIDriverSpec
	tests := []struct {
		name   string
		change func(*spec)
		want   []string
		detail string
	}{
		{name: "mutable fields", change: func(s *spec) {
			s.PodInfoOnMount = ptr(true)
			s.StorageCapacity = ptr(true)
			s.FSGroupPolicy = ptr(storagev1.NoneFSGroupPolicy)
			s.TokenRequests = []storagev1.TokenRequest{{Audience: "a"}}
			s.RequiresRepublish = ptr(true)
			s.SELinuxMount = ptr(true)
			s.NodeAllocatableUpdatePeriodSeconds = ptr(int64(60))
		}},
		{
			name:   "attachRequired",
			change: func(s *spec) { s.AttachRequired = ptr(false) },
			want:   []string{"FieldValueInvalid spec.attachedRequired"},
			detail: "spec.attachedRequired: Invalid value: false: field is immutable",
		},
		{
			name: "lifecycle modes",
			change: func(s *spec) {
				s.VolumeLifecycleModes = append(s.VolumeLifecycleModes, storagev1.VolumeLifecycleEphemeral)
			},
			want:   []string{"FieldValueInvalid spec.volumeLifecycleModes"},
			detail: `spec.volumeLifecycleModes: Invalid value: ["Persistent","Ephemeral"]: field is immutable`,
		},
	}
	r := descriptor(t, "csidrivers")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validCSIDriver()
			d := old.DeepCopy()
			tt.change(&d.Spec)
			checkErrs(t, r.Strategy.ValidateUpdate(d, old), tt.want, tt.detail)
		})
	}
}

func TestCSIDriverGeneration(t *testing.T) {
	ctx := context.Background()
	r := descriptor(t, "csidrivers")
	d := validCSIDriver()
	r.Strategy.PrepareForCreate(ctx, d)
	if d.Generation != 0 {
		t.Errorf("generation after create %d, want 0 (left as sent)", d.Generation)
	}

	old := validCSIDriver()
	old.Generation = 2
	same := old.DeepCopy()
	same.Labels = map[string]string{"a": "b"}
	r.Strategy.PrepareForUpdate(ctx, same, old)
	if same.Generation != 2 {
		t.Errorf("generation after a metadata change %d, want 2", same.Generation)
	}
	changed := old.DeepCopy()
	changed.Spec.PodInfoOnMount = ptr(true)
	r.Strategy.PrepareForUpdate(ctx, changed, old)
	if changed.Generation != 3 {
		t.Errorf("generation after a spec change %d, want 3", changed.Generation)
	}
}

func TestCSIDriverWarnings(t *testing.T) {
	r := descriptor(t, "csidrivers")
	plain := validCSIDriver()
	tokens := validCSIDriver()
	tokens.Spec.TokenRequests = []storagev1.TokenRequest{{Audience: "vault"}}
	inSecrets := tokens.DeepCopy()
	inSecrets.Spec.ServiceAccountTokenInSecrets = ptr(false)
	otherAudience := tokens.DeepCopy()
	otherAudience.Spec.TokenRequests[0].Audience = "sts"
	want := []string{tokenInSecretsWarning}

	for _, tt := range []struct {
		name string
		got  []string
		want []string
	}{
		{"create, no tokens", r.Strategy.WarningsOnCreate(plain), nil},
		{"create, tokens", r.Strategy.WarningsOnCreate(tokens), want},
		{"create, tokens placed", r.Strategy.WarningsOnCreate(inSecrets), nil},
		{"update, tokens added", r.Strategy.WarningsOnUpdate(tokens, plain), want},
		{"update, tokens unchanged", r.Strategy.WarningsOnUpdate(tokens, tokens.DeepCopy()), nil},
		{"update, audience changed", r.Strategy.WarningsOnUpdate(otherAudience, tokens), want},
		{"update, tokens removed", r.Strategy.WarningsOnUpdate(plain, tokens), nil},
	} {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestCSIDriverTable(t *testing.T) {
	full := validCSIDriver()
	full.Spec.TokenRequests = []storagev1.TokenRequest{{Audience: "vault"}, {Audience: "sts"}}
	full.Spec.RequiresRepublish = ptr(true)
	full.Spec.StorageCapacity = ptr(true)
	full.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral}
	noTokens := validCSIDriver()
	noTokens.Spec.TokenRequests = []storagev1.TokenRequest{}
	raw := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "raw"}}
	tests := []struct {
		name string
		obj  *storagev1.CSIDriver
		want []interface{}
	}{
		{"defaulted", validCSIDriver(), []interface{}{"ebs.csi.aws.com", true, false, false, "<unset>", false, "Persistent", "<unknown>"}},
		{"full", full, []interface{}{"ebs.csi.aws.com", true, false, true, "vault,sts", true, "Persistent,Ephemeral", "<unknown>"}},
		{"empty token list", noTokens, []interface{}{"ebs.csi.aws.com", true, false, false, "", false, "Persistent", "<unknown>"}},
		{"not defaulted", raw, []interface{}{"raw", true, false, false, "<unset>", false, "<none>", "<unknown>"}},
	}
	tbl := descriptor(t, "csidrivers").Table
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tbl.Row(tt.obj)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
