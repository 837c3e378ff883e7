package daemonset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// templateHash names a pod template: an FNV-32a hash of its JSON form and
// the DaemonSet's collisionCount, encoded as upstream encodes its hashes
// (rand.SafeEncodeString) so it is a valid label value. It is the
// controller-revision-hash label of the pods and the suffix of the
// ControllerRevision's name. skiff hashes JSON where upstream hashes a
// deep print of the Go struct, so the values differ from upstream's.
func templateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	b, _ := json.Marshal(t)
	h.Write(b)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// revisionData is a ControllerRevision's data for ds as upstream writes
// it: a strategic merge patch that replaces spec.template, which is what
// kubectl rollout history and undo read and apply.
func revisionData(ds *appsv1.DaemonSet) ([]byte, error) {
	raw, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: template: %w", ds.Namespace, ds.Name, err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: template: %w", ds.Namespace, ds.Name, err)
	}
	tmpl["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": tmpl}})
}

// sameData reports whether two revision data blobs hold the same JSON.
func sameData(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(ax, by)
}

// rawData returns the raw data of a ControllerRevision.
func rawData(r *appsv1.ControllerRevision) []byte {
	if r.Data.Raw != nil {
		return r.Data.Raw
	}
	if r.Data.Object != nil {
		b, _ := json.Marshal(r.Data.Object)
		return b
	}
	return nil
}

// revisionsToPrune returns the revisions beyond limit that are neither
// current nor used by a live pod (by hash), oldest (lowest revision)
// first.
func revisionsToPrune(revs []*appsv1.ControllerRevision, current string, inUse map[string]bool, limit int32) []*appsv1.ControllerRevision {
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		h := r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		if r.Name == current || inUse[h] {
			continue
		}
		old = append(old, r)
	}
	extra := len(old) - int(max(limit, 0))
	if extra <= 0 {
		return nil
	}
	slices.SortStableFunc(old, func(a, b *appsv1.ControllerRevision) int {
		switch {
		case a.Revision < b.Revision:
			return -1
		case a.Revision > b.Revision:
			return 1
		}
		return 0
	})
	return old[:extra]
}
