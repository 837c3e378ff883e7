package persistentvolume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

type volumeOpt func(*corev1.PersistentVolume)

func vol(name, size string, opts ...volumeOpt) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

type claimOpt func(*corev1.PersistentVolumeClaim)

func clm(name, size string, opts ...claimOpt) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func modes(m ...corev1.PersistentVolumeAccessMode) volumeOpt {
	return func(v *corev1.PersistentVolume) { v.Spec.AccessModes = m }
}
func volClass(c string) volumeOpt {
	return func(v *corev1.PersistentVolume) { v.Spec.StorageClassName = c }
}
func block(v *corev1.PersistentVolume) {
	v.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
}
func labelled(k, val string) volumeOpt {
	return func(v *corev1.PersistentVolume) { v.Labels = map[string]string{k: val} }
}
func phase(p corev1.PersistentVolumePhase) volumeOpt {
	return func(v *corev1.PersistentVolume) { v.Status.Phase = p }
}
func claimRef(ns, name, uid string) volumeOpt {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: name, UID: types.UID(uid)}
	}
}
func deleting(v *corev1.PersistentVolume) {
	now := metav1.Now()
	v.DeletionTimestamp = &now
}

func wantModes(m ...corev1.PersistentVolumeAccessMode) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = m }
}
func claimClass(name string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To(name) }
}
func wantBlock(c *corev1.PersistentVolumeClaim) {
	c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
}
func selecting(k, val string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) {
		c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{k: val}}
	}
}

// TestFindBestMatch is the binding matrix: which volume a claim gets.
func TestFindBestMatch(t *testing.T) {
	rwo, rox, rwx := corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany
	tests := []struct {
		name    string
		claim   *corev1.PersistentVolumeClaim
		volumes []*corev1.PersistentVolume
		delay   bool
		want    string // "" for none
	}{
		{"smallest that fits", clm("c", "5Gi"),
			[]*corev1.PersistentVolume{vol("a", "10Gi"), vol("b", "5Gi"), vol("c", "1Gi"), vol("d", "20Gi")}, false, "b"},
		{"larger unit still fits", clm("c", "1500Mi"),
			[]*corev1.PersistentVolume{vol("a", "1Gi"), vol("b", "2Gi")}, false, "b"},
		{"all too small", clm("c", "5Gi"),
			[]*corev1.PersistentVolume{vol("a", "1Gi"), vol("b", "4Gi")}, false, ""},
		{"no class matches only no class", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("gold", "1Gi", volClass("gold")), vol("plain", "2Gi")}, false, "plain"},
		{"explicit empty class is no class", clm("c", "1Gi", claimClass("")),
			[]*corev1.PersistentVolume{vol("gold", "1Gi", volClass("gold")), vol("plain", "2Gi")}, false, "plain"},
		{"class must match", clm("c", "1Gi", claimClass("gold")),
			[]*corev1.PersistentVolume{vol("silver", "1Gi", volClass("silver")), vol("plain", "1Gi"), vol("gold", "5Gi", volClass("gold"))}, false, "gold"},
		{"class with no volume", clm("c", "1Gi", claimClass("gold")),
			[]*corev1.PersistentVolume{vol("plain", "1Gi")}, false, ""},
		{"volume must have every mode", clm("c", "1Gi", wantModes(rwo, rwx)),
			[]*corev1.PersistentVolume{vol("rwo", "1Gi"), vol("rwx", "1Gi", modes(rwx)), vol("both", "9Gi", modes(rwx, rwo))}, false, "both"},
		{"fewest extra modes before size", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("multi", "1Gi", modes(rwo, rox)), vol("exact", "9Gi")}, false, "exact"},
		{"extra modes when nothing closer", clm("c", "1Gi", wantModes(rox)),
			[]*corev1.PersistentVolume{vol("rwo", "1Gi"), vol("multi", "2Gi", modes(rwo, rox, rwx))}, false, "multi"},
		{"no volume with the mode", clm("c", "1Gi", wantModes(rwx)),
			[]*corev1.PersistentVolume{vol("rwo", "1Gi"), vol("rox", "1Gi", modes(rox))}, false, ""},
		{"block wants block", clm("c", "1Gi", wantBlock),
			[]*corev1.PersistentVolume{vol("fs", "1Gi"), vol("blk", "2Gi", block)}, false, "blk"},
		{"filesystem refuses block", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("blk", "1Gi", block)}, false, ""},
		{"selector", clm("c", "1Gi", selecting("tier", "fast")),
			[]*corev1.PersistentVolume{vol("slow", "1Gi", labelled("tier", "slow")), vol("fast", "2Gi", labelled("tier", "fast"))}, false, "fast"},
		{"selector without match", clm("c", "1Gi", selecting("tier", "fast")),
			[]*corev1.PersistentVolume{vol("none", "1Gi")}, false, ""},
		{"only Available volumes", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("released", "1Gi", phase(corev1.VolumeReleased)), vol("pending", "1Gi", phase(corev1.VolumePending)),
				vol("failed", "1Gi", phase(corev1.VolumeFailed))}, false, ""},
		{"not a volume being deleted", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("going", "1Gi", deleting), vol("staying", "2Gi")}, false, "staying"},
		{"pre-bound volume wins over a smaller one", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("small", "1Gi"), vol("mine", "5Gi", claimRef("default", "c", ""))}, false, "mine"},
		{"pre-bound volume of another claim is skipped", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("theirs", "1Gi", claimRef("default", "other", "")), vol("free", "5Gi")}, false, "free"},
		{"pre-bound volume in another namespace is skipped", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("theirs", "1Gi", claimRef("elsewhere", "c", ""))}, false, ""},
		{"pre-bound volume must fit", clm("c", "5Gi"),
			[]*corev1.PersistentVolume{vol("mine", "1Gi", claimRef("default", "c", ""))}, false, ""},
		{"delay binding leaves free volumes to the scheduler", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("free", "1Gi")}, true, ""},
		{"delay binding still takes a pre-bound volume", clm("c", "1Gi"),
			[]*corev1.PersistentVolume{vol("free", "1Gi"), vol("mine", "1Gi", claimRef("default", "c", ""))}, true, "mine"},
		{"volume attributes class must match", clm("c", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeAttributesClassName = ptr.To("fast") }),
			[]*corev1.PersistentVolume{vol("plain", "1Gi"), vol("fast", "2Gi", func(v *corev1.PersistentVolume) { v.Spec.VolumeAttributesClassName = ptr.To("fast") })}, false, "fast"},
		{"no volumes", clm("c", "1Gi"), nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findBestMatch(tt.claim, tt.volumes, tt.delay)
			if err != nil {
				t.Fatal(err)
			}
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("matched %q, want %q", name, tt.want)
			}
		})
	}
}

func TestSatisfies(t *testing.T) {
	tests := []struct {
		name   string
		volume *corev1.PersistentVolume
		claim  *corev1.PersistentVolumeClaim
		want   string
	}{
		{"fits", vol("v", "2Gi"), clm("c", "1Gi"), ""},
		{"too small", vol("v", "1Gi"), clm("c", "2Gi"), "requested PV is too small"},
		{"class", vol("v", "1Gi", volClass("gold")), clm("c", "1Gi"), "storageClassName does not match"},
		{"volume mode", vol("v", "1Gi", block), clm("c", "1Gi"), "incompatible volumeMode"},
		{"access mode", vol("v", "1Gi"), clm("c", "1Gi", wantModes(corev1.ReadWriteMany)), "incompatible accessMode"},
		{"deleted", vol("v", "1Gi", deleting), clm("c", "1Gi"), `the volume is marked for deletion "v"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := satisfies(tt.volume, tt.claim); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
