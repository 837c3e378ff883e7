package deployment

import (
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// plan is everything one sync of a Deployment is to write, decided from a
// snapshot of the Deployment and its ReplicaSets without any I/O.
type plan struct {
	// d is the Deployment with the annotations and status to write.
	d *appsv1.Deployment
	// newRS is the working copy of the ReplicaSet whose template matches
	// the Deployment's (nil if there is none and none is to be created);
	// createNew says it does not exist yet.
	newRS     *appsv1.ReplicaSet
	createNew bool
	// oldRSs are working copies of the other ReplicaSets, with the
	// replicas and annotations to write.
	oldRSs []*appsv1.ReplicaSet
	// deletes are old ReplicaSets beyond the revision history limit.
	deletes []*appsv1.ReplicaSet
	// rollback, when set, is an automatic rollback to perform instead of
	// everything else.
	rollback *rollback
	// requeueAfter is when to look at the Deployment again to check its
	// progress deadline (0: no need).
	requeueAfter time.Duration
}

// decide computes one sync of d, given the ReplicaSets it owns (already
// claimed) and the time. It never modifies its inputs. The steps are
// upstream's: a Deployment being deleted only gets its status; a paused
// one or one whose spec.replicas changed is scaled (proportionally
// mid-rollout) without rollout progress; otherwise it takes one Recreate
// or RollingUpdate step, cleans up history once complete, and its
// Progressing condition follows the rollout and the progress deadline.
func decide(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, now time.Time) plan {
	d = d.DeepCopy()
	work := make([]*appsv1.ReplicaSet, 0, len(rsList))
	listed := make(map[string]*appsv1.ReplicaSet, len(rsList))
	for _, rs := range rsList {
		if rs == nil {
			continue
		}
		work = append(work, rs.DeepCopy())
		listed[rs.Name] = rs
	}
	newRS, oldRSs := findNewAndOld(d, work)
	p := plan{d: d, newRS: newRS, oldRSs: oldRSs}

	if d.DeletionTimestamp != nil {
		d.Status = calculateStatus(d, withNew(oldRSs, newRS), newRS, now)
		return p
	}
	if wantsAutoRollback(d) {
		if rb := rollbackTarget(d, newRS, oldRSs); rb != nil {
			p.rollback = rb
			return p
		}
	}

	revision := maxRevision(oldRSs) + 1
	pausedCondition(d, &d.Status, now)
	if newRS != nil {
		setNewRSAnnotations(d, newRS, revision)
		newRS.Spec.MinReadySeconds = d.Spec.MinReadySeconds
		setDeploymentRevision(d, newRS)
		if hasProgressDeadline(d) && getCondition(&d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonFoundNewRS, "Found new replica set \""+newRS.Name+"\"", now))
		}
	}

	if d.Spec.Paused || isScalingEvent(d, withNew(oldRSs, newRS)) {
		scale(d, newRS, oldRSs)
		if d.Spec.Paused {
			p.deletes = historyToDelete(d, oldRSs, listed)
		}
		d.Status = calculateStatus(d, withNew(oldRSs, newRS), newRS, now)
		return p
	}

	create := func() {
		newRS = newReplicaSet(d, revision)
		p.newRS, p.createNew = newRS, true
		setDeploymentRevision(d, newRS)
		if hasProgressDeadline(d) {
			c := condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSCreated, "Created new replica set \""+newRS.Name+"\"", now)
			removeCondition(&d.Status, appsv1.DeploymentProgressing)
			setCondition(&d.Status, c)
		}
	}
	if isRollingUpdate(d) {
		if newRS == nil {
			create()
		}
		if n := newRSReplicas(d, withNew(oldRSs, newRS), newRS); n != rsReplicas(newRS) {
			scaleTo(d, newRS, n)
		}
		rollOld(d, newRS, oldRSs)
	} else {
		switch act := active(oldRSs); {
		case len(act) > 0:
			for _, rs := range act {
				scaleTo(d, rs, 0)
			}
		case oldPodsRunning(oldRSs):
			// Wait for the old pods to be gone.
		default:
			if newRS == nil {
				create()
			}
			if rsReplicas(newRS) != replicasOf(d) {
				scaleTo(d, newRS, replicasOf(d))
			}
		}
	}

	st := calculateStatus(d, withNew(oldRSs, newRS), newRS, now)
	if deploymentComplete(d, &st) {
		p.deletes = historyToDelete(d, oldRSs, listed)
		if newRS != nil && replicasOf(d) > 0 {
			markAvailable(newRS)
		}
	}
	p.requeueAfter = progress(d, &st, newRS, oldRSs, now)
	d.Status = st
	return p
}

// findNewAndOld splits rss into the new ReplicaSet (the oldest whose
// template equals the Deployment's, ignoring pod-template-hash) and the
// old ones. kubectl finds the new ReplicaSet the same way.
func findNewAndOld(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	sorted := slices.Clone(rss)
	sortOldestFirst(sorted)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range sorted {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// equalIgnoreHash compares pod templates ignoring the pod-template-hash
// label (nil and empty maps and slices are equal).
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// newReplicaSet builds the new ReplicaSet for d's template at revision,
// with zero replicas: named <deployment>-<pod-template-hash>, the hash
// label added to its labels, selector and template, controlled by d.
func newReplicaSet(d *appsv1.Deployment, revision int64) *appsv1.ReplicaSet {
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	t := d.Spec.Template.DeepCopy()
	t.Labels = withLabel(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	sel := &metav1.LabelSelector{}
	if d.Spec.Selector != nil {
		sel = d.Spec.Selector.DeepCopy()
	}
	sel.MatchLabels = withLabel(sel.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	var zero int32
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          withLabel(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, gvk)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &zero,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        *t,
		},
	}
	setNewRSAnnotations(d, rs, revision)
	return rs
}

// setDeploymentRevision copies the new ReplicaSet's revision onto d.
func setDeploymentRevision(d *appsv1.Deployment, newRS *appsv1.ReplicaSet) {
	rev := revisionOf(newRS.Annotations)
	if rev == 0 || d.Annotations[RevisionAnnotation] == strconv.FormatInt(rev, 10) {
		return
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = strconv.FormatInt(rev, 10)
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for mk, mv := range m {
		out[mk] = mv
	}
	out[k] = v
	return out
}
