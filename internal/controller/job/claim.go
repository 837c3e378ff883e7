package job

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// claimPods returns the pods job controls, in any phase, after adopting the
// orphans its selector matches and releasing the pods it controls that the
// selector no longer matches (upstream's ClaimPods). Candidates come from
// the pod indexes: pods controlled by job and orphans in its namespace.
func (c *Controller) claimPods(ctx context.Context, job *batchv1.Job, selector labels.Selector) ([]*corev1.Pod, error) {
	owned, err := podset.PodsControlledBy(c.pods, job.UID)
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: pods by controller: %w", job.Namespace, job.Name, err)
	}
	orphans, err := podset.OrphanPods(c.pods, job.Namespace)
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: orphan pods: %w", job.Namespace, job.Name, err)
	}
	candidates := make([]*corev1.Pod, 0, len(owned)+len(orphans))
	for _, p := range owned {
		if p.Namespace == job.Namespace {
			candidates = append(candidates, p)
		}
	}
	candidates = append(candidates, orphans...)
	mine, adopt, release := podset.Claim(candidates, job.UID, selector, job.DeletionTimestamp != nil)

	if len(adopt) > 0 && c.canAdopt(ctx, job) {
		for _, p := range adopt {
			patched, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
				podset.AdoptPatch(p, job, gvk), metav1.PatchOptions{})
			if err != nil {
				// Gone, or taken by another owner meanwhile: the
				// informer event will bring the truth.
				c.log.Debug("adopting pod failed", "job", job.Name, "pod", p.Name, "err", err)
				continue
			}
			mine = append(mine, patched)
		}
	}
	for _, p := range release {
		_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
			podset.ReleasePatch(p, job.UID), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.log.Debug("releasing pod failed", "job", job.Name, "pod", p.Name, "err", err)
		}
	}
	return mine, nil
}

// canAdopt re-reads job from the server before adopting: a Job that is
// being deleted (or was replaced by another of the same name) must not
// take pods, and the cache may not know yet.
func (c *Controller) canAdopt(ctx context.Context, job *batchv1.Job) bool {
	fresh, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	return err == nil && fresh.UID == job.UID && fresh.DeletionTimestamp == nil
}

// enqueueMatching queues every Job in the pod's namespace whose selector
// matches the pod: the Jobs that may adopt it, an orphan.
func (c *Controller) enqueueMatching(p *corev1.Pod) {
	if len(p.Labels) == 0 || p.DeletionTimestamp != nil {
		return
	}
	jobs, err := c.jobs.Jobs(p.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, j := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			c.queue.Add(j.Namespace + "/" + j.Name)
		}
	}
}
