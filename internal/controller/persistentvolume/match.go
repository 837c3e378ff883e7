package persistentvolume

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// accessModeOrder is the order upstream spells a set of access modes in
// (its access-modes index keys).
var accessModeOrder = []corev1.PersistentVolumeAccessMode{
	corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod,
}

// modeSet is a set of known access modes, in accessModeOrder.
type modeSet []corev1.PersistentVolumeAccessMode

func modesOf(modes []corev1.PersistentVolumeAccessMode) modeSet {
	var s modeSet
	for _, m := range accessModeOrder {
		if slices.Contains(modes, m) {
			s = append(s, m)
		}
	}
	return s
}

func (s modeSet) key() string {
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = string(m)
	}
	return strings.Join(parts, ",")
}

// holds reports whether s has every mode of requested.
func (s modeSet) holds(requested []corev1.PersistentVolumeAccessMode) bool {
	for _, m := range requested {
		if !slices.Contains(s, m) {
			return false
		}
	}
	return true
}

// findBestMatch returns the volume claim should be bound to, or nil: a
// volume pre-bound to the claim, or else the smallest Available volume that
// satisfies it. Volumes are grouped by their set of access modes; only sets
// holding every mode the claim asks for are searched, fewest modes first,
// so a claim gets the volume closest to what it asked for (upstream's
// findBestMatchForClaim over its access-modes index). When delayBinding is
// set (WaitForFirstConsumer), only a pre-bound volume is returned: the
// scheduler picks the others.
func findBestMatch(claim *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, delayBinding bool) (*corev1.PersistentVolume, error) {
	groups := map[string][]*corev1.PersistentVolume{}
	sets := map[string]modeSet{}
	for _, v := range volumes {
		s := modesOf(v.Spec.AccessModes)
		k := s.key()
		groups[k] = append(groups[k], v)
		sets[k] = s
	}
	var keys []string
	for k, s := range sets {
		if s.holds(claim.Spec.AccessModes) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(sets[keys[i]]) != len(sets[keys[j]]) {
			return len(sets[keys[i]]) < len(sets[keys[j]])
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		// Sorted by name so that equal candidates are chosen the same
		// way every time.
		vs := groups[k]
		sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
		// VolumeAttributesClass is GA (on by default) since 1.34.
		v, err := storagehelpers.FindMatchingVolume(claim, vs, nil, nil, delayBinding, true)
		if err != nil {
			return nil, fmt.Errorf("claim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
		if v != nil {
			return v, nil
		}
	}
	return nil, nil
}

// satisfies reports why volume cannot serve claim, which named it in
// spec.volumeName, or nil when it can (upstream's checkVolumeSatisfyClaim).
func satisfies(volume *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	if volume.DeletionTimestamp != nil {
		return fmt.Errorf("the volume is marked for deletion %q", volume.Name)
	}
	requested := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	capacity := volume.Spec.Capacity[corev1.ResourceStorage]
	if capacity.Value() < requested.Value() {
		return fmt.Errorf("requested PV is too small")
	}
	if storagehelpers.GetPersistentVolumeClass(volume) != storagehelpers.GetPersistentVolumeClaimClass(claim) {
		return fmt.Errorf("storageClassName does not match")
	}
	if storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &volume.Spec) {
		return fmt.Errorf("incompatible volumeMode")
	}
	if !storagehelpers.CheckAccessModes(claim, volume) {
		return fmt.Errorf("incompatible accessMode")
	}
	return nil
}
