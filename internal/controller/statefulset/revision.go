package statefulset

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
)

// revisionData is what a ControllerRevision of a set holds: the pod
// template as the strategic merge patch {"spec":{"template":{...,
// "$patch":"replace"}}}, the form upstream stores and kubectl rollout
// history/undo read and apply.
func revisionData(template *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(template)
	if err != nil {
		return nil, fmt.Errorf("encoding pod template: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("encoding pod template: %w", err)
	}
	m["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
}

// templateOf decodes the pod template a ControllerRevision holds.
func templateOf(cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	if cr == nil {
		return nil, fmt.Errorf("no revision")
	}
	raw := cr.Data.Raw
	if raw == nil && cr.Data.Object != nil {
		b, err := json.Marshal(cr.Data.Object)
		if err != nil {
			return nil, fmt.Errorf("revision %s: %w", cr.Name, err)
		}
		raw = b
	}
	var d struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("revision %s: decoding template: %w", cr.Name, err)
	}
	return &d.Spec.Template, nil
}

// revisionHash is the short, name-safe hash of revision data (and the
// set's collisionCount, so that a collision can be escaped by bumping it).
func revisionHash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.Itoa(int(*collisionCount))))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// newRevision builds the ControllerRevision <set>-<hash> with number
// revision, labelled with the template's labels (so kubectl finds it by
// the set's selector) and the hash, controlled by set.
func newRevision(set *appsv1.StatefulSet, data []byte, hash string, revision int64) *appsv1.ControllerRevision {
	labels := map[string]string{}
	for k, v := range set.Spec.Template.Labels {
		labels[k] = v
	}
	labels[appsv1.ControllerRevisionHashLabelKey] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            set.Name + "-" + hash,
			Namespace:       set.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, gvk)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
}

// maxRevision is the highest revision number among revs (0 if none).
func maxRevision(revs []*appsv1.ControllerRevision) int64 {
	var n int64
	for _, r := range revs {
		n = max(n, r.Revision)
	}
	return n
}

// revisionsToDelete returns the revisions beyond limit that no pod, nor
// the current or update revision, uses: the oldest first.
func revisionsToDelete(revs []*appsv1.ControllerRevision, live map[string]bool, limit int) []*appsv1.ControllerRevision {
	var dead []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			dead = append(dead, r)
		}
	}
	if len(dead) <= limit {
		return nil
	}
	slices.SortStableFunc(dead, func(a, b *appsv1.ControllerRevision) int {
		switch {
		case a.Revision < b.Revision:
			return -1
		case a.Revision > b.Revision:
			return 1
		}
		return 0
	})
	return dead[:len(dead)-limit]
}
