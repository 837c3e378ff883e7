package statefulset

import (
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// ordinalOf returns the ordinal of a pod named "<set>-<ordinal>", and
// false for any other name (including leading zeros or a sign), so that
// only the set's own pods take a slot.
func ordinalOf(set, pod string) (int, bool) {
	s, ok := strings.CutPrefix(pod, set+"-")
	if !ok || s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// podName is the name of the set's pod with ordinal.
func podName(set string, ordinal int) string { return set + "-" + strconv.Itoa(ordinal) }

// claimName is the name of the PersistentVolumeClaim of template claim for
// the pod with ordinal: <claim>-<set>-<ordinal>, as upstream.
func claimName(claim, set string, ordinal int) string { return claim + "-" + podName(set, ordinal) }

// startOrdinal is spec.ordinals.start (0 when unset).
func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil && set.Spec.Ordinals.Start > 0 {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

// newPod builds the set's pod with ordinal from template (the template of
// revision, which may be older than the set's): identity labels,
// hostname and subdomain, and a volume for each volumeClaimTemplate that
// refers to the pod's own claim.
func newPod(set *appsv1.StatefulSet, template *corev1.PodTemplateSpec, ordinal int, revision string) *corev1.Pod {
	name := podName(set.Name, ordinal)
	pod := podset.FromTemplate(template, set, gvk, name, "")
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal)
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for _, claim := range set.Spec.VolumeClaimTemplates {
		vol := corev1.Volume{Name: claim.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(claim.Name, set.Name, ordinal)},
		}}
		replaced := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == claim.Name {
				pod.Spec.Volumes[i] = vol
				replaced = true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
		}
	}
	return pod
}

// newClaims returns the PersistentVolumeClaims the pod with ordinal (in
// the set's range) needs, labelled with the set's selector labels so that
// they can be found again. Under whenDeleted Delete they are created
// owned by the set (claimOwners); otherwise they have no owner and
// outlive the pods and the set. Upstream creates them without owner and
// adds the set's reference on a later sync, so a set deleted in between
// leaves them behind.
func newClaims(set *appsv1.StatefulSet, ordinal int) []*corev1.PersistentVolumeClaim {
	var out []*corev1.PersistentVolumeClaim
	var owners []metav1.OwnerReference
	if retentionOf(set).withSet {
		owners = []metav1.OwnerReference{*metav1.NewControllerRef(set, gvk)}
	}
	for _, t := range set.Spec.VolumeClaimTemplates {
		c := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name:        claimName(t.Name, set.Name, ordinal),
				Namespace:   set.Namespace,
				Labels:      map[string]string{},
				Annotations: t.DeepCopy().Annotations,
				// One slice per claim: callers may change them.
				OwnerReferences: slices.Clone(owners),
			},
			Spec: *t.Spec.DeepCopy(),
		}
		for k, v := range t.Labels {
			c.Labels[k] = v
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				c.Labels[k] = v
			}
		}
		out = append(out, c)
	}
	return out
}
