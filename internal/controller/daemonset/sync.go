package daemonset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// templateGenerationLabel carries the DaemonSet's template generation on
// its pods, as upstream labels them.
const templateGenerationLabel = "pod-template-generation"

// errHashCollision is returned after bumping status.collisionCount because
// another template already holds the revision name; the retry uses the new
// hash.
var errHashCollision = errors.New("controller revision hash collision")

// sync reconciles one DaemonSet: its current ControllerRevision, a pod per
// eligible node, the rollout, status, and revision history.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, n, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(n)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemonset %s: %w", key, err)
	}
	if ds.DeletionTimestamp != nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods or has an invalid selector. A non-empty selector is required.")
		return nil
	}
	now := c.clock.Now()
	revs := c.ownedRevisions(ds)
	hash, err := c.currentRevision(ctx, ds, revs)
	if err != nil {
		return err
	}

	byNode := map[string][]*corev1.Pod{}
	for _, o := range c.byController(c.pods, ds) {
		p, ok := o.(*corev1.Pod)
		if !ok || p.DeletionTimestamp != nil || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		node := podNode(p)
		byNode[node] = append(byNode[node], p)
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("daemonset %s: nodes: %w", key, err)
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	probe := newPod(ds, "", hash)
	views := make([]nodeView, 0, len(nodes))
	desired := 0
	for _, node := range nodes {
		v := nodeView{name: node.Name, fit: nodeFit(node, probe), pods: byNode[node.Name]}
		delete(byNode, node.Name)
		if v.fit.shouldRun {
			desired++
		}
		views = append(views, v)
	}
	r := rolloutFor(ds, desired)
	p := decide(views, hash, r, now)
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		p.remove = append(p.remove, byNode[node]...) // pods of nodes that are gone, or of no node
	}
	if len(p.create)+len(p.remove) > 0 && c.exp.Satisfied(key, now) {
		c.act(ctx, key, ds, hash, p, now)
	}

	cn := countNodes(views, hash, ds.Spec.MinReadySeconds, now)
	status := ds.Status.DeepCopy()
	status.DesiredNumberScheduled = cn.desired
	status.CurrentNumberScheduled = cn.current
	status.NumberMisscheduled = cn.misscheduled
	status.NumberReady = cn.ready
	status.NumberAvailable = cn.available
	status.NumberUnavailable = max(cn.desired-cn.available, 0)
	status.UpdatedNumberScheduled = cn.updated
	status.ObservedGeneration = ds.Generation
	if !apiequality.Semantic.DeepEqual(ds.Status, *status) {
		upd := ds.DeepCopy()
		upd.Status = *status
		if _, err := c.client.AppsV1().DaemonSets(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("daemonset %s: update status: %w", key, err)
		}
	}
	if err := c.pruneRevisions(ctx, ds, revs, hash, views); err != nil {
		return err
	}
	if ds.Spec.MinReadySeconds > 0 {
		var soonest time.Duration
		for _, v := range views {
			for _, pod := range v.pods {
				if d := podset.UntilAvailable(pod, ds.Spec.MinReadySeconds, now); d > 0 && (soonest == 0 || d < soonest) {
					soonest = d
				}
			}
		}
		if soonest > 0 {
			c.queue.AddAfter(key, soonest)
		}
	}
	return nil
}

// act deletes and creates pods as planned, under expectations; creations
// go in slow-start batches (1, 2, 4, ...) and stop at a failing batch.
func (c *Controller) act(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, p plan, now time.Time) {
	delKeys := make([]string, len(p.remove))
	for i, pod := range p.remove {
		delKeys[i] = pod.Namespace + "/" + pod.Name
	}
	c.exp.Expect(key, len(p.create), delKeys, now)
	for i, pod := range p.remove {
		uid := pod.UID
		err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil {
			c.exp.DeletionObserved(key, delKeys[i])
			if !apierrors.IsNotFound(err) {
				c.log.Info("deleting pod failed", "daemonset", key, "pod", pod.Name, "err", err)
				c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Error deleting pod %s: %v", pod.Name, err)
			}
			continue
		}
		c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
	}
	rest := p.create
	for batch := 1; len(rest) > 0; batch *= 2 {
		n := min(batch, len(rest))
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := false
		for _, node := range rest[:n] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, newPod(ds, node, hash), metav1.CreateOptions{})
				if err != nil {
					c.exp.CreationObserved(key)
					mu.Lock()
					failed = true
					mu.Unlock()
					if ctx.Err() == nil {
						c.log.Info("creating pod failed", "daemonset", key, "node", node, "err", err)
						c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
					}
					return
				}
				c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", got.Name)
			}()
		}
		wg.Wait()
		rest = rest[n:]
		if failed {
			for range rest {
				c.exp.CreationObserved(key)
			}
			return
		}
	}
}

// newPod builds a daemon pod of ds for node ("" for the probe pod that
// judges node eligibility): the template with the revision labels, the
// daemon tolerations and, for a node, the affinity that pins it there.
func newPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	pod := podset.FromTemplate(&ds.Spec.Template, ds, gvk, "", ds.Name+"-")
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	if g := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; g != "" {
		pod.Labels[templateGenerationLabel] = g
	}
	addDaemonTolerations(&pod.Spec)
	if node != "" {
		pinToNode(&pod.Spec, node)
	}
	return pod
}

// byController returns the objects in indexer controlled by ds.
func (c *Controller) byController(indexer cache.Indexer, ds *appsv1.DaemonSet) []any {
	objs, err := podset.ControlledBy(indexer, ds.UID)
	if err != nil {
		return nil
	}
	return objs
}

func (c *Controller) ownedRevisions(ds *appsv1.DaemonSet) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, o := range c.byController(c.revisions, ds) {
		if r, ok := o.(*appsv1.ControllerRevision); ok && r.Namespace == ds.Namespace {
			out = append(out, r)
		}
	}
	return out
}

// currentRevision makes sure a ControllerRevision holds ds's template with
// the highest revision number, and returns its hash. A revision holding
// the same template is reused (a rollback renumbers it); a different
// template under the same name bumps status.collisionCount.
func (c *Controller) currentRevision(ctx context.Context, ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision) (string, error) {
	data, err := revisionData(ds)
	if err != nil {
		return "", err
	}
	hash := templateHash(&ds.Spec.Template, ds.Status.CollisionCount)
	revName := ds.Name + "-" + hash
	var maxRev int64
	var cur *appsv1.ControllerRevision
	for _, r := range revs {
		maxRev = max(maxRev, r.Revision)
		if r.Name == revName {
			cur = r
		}
	}
	if cur == nil {
		for _, r := range revs {
			if h := r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]; h != "" && sameData(rawData(r), data) {
				cur, hash = r, h
				break
			}
		}
	}
	if cur != nil {
		if !sameData(rawData(cur), data) {
			return "", c.bumpCollision(ctx, ds)
		}
		if cur.Revision < maxRev {
			upd := cur.DeepCopy()
			upd.Revision = maxRev + 1
			if _, err := c.client.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return "", fmt.Errorf("daemonset %s/%s: renumber revision %s: %w", ds.Namespace, ds.Name, cur.Name, err)
			}
		}
		return hash, nil
	}
	lbls := map[string]string{}
	maps.Copy(lbls, ds.Spec.Template.Labels)
	lbls[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: revName, Namespace: ds.Namespace, Labels: lbls,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, gvk)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: maxRev + 1,
	}
	_, err = c.client.AppsV1().ControllerRevisions(ds.Namespace).Create(ctx, rev, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := c.client.AppsV1().ControllerRevisions(ds.Namespace).Get(ctx, revName, metav1.GetOptions{})
		if gerr != nil {
			return "", fmt.Errorf("daemonset %s/%s: get revision %s: %w", ds.Namespace, ds.Name, revName, gerr)
		}
		if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == ds.UID && sameData(rawData(existing), data) {
			return hash, nil
		}
		return "", c.bumpCollision(ctx, ds)
	}
	if err != nil {
		return "", fmt.Errorf("daemonset %s/%s: create revision: %w", ds.Namespace, ds.Name, err)
	}
	return hash, nil
}

func (c *Controller) bumpCollision(ctx context.Context, ds *appsv1.DaemonSet) error {
	upd := ds.DeepCopy()
	var n int32
	if upd.Status.CollisionCount != nil {
		n = *upd.Status.CollisionCount
	}
	n++
	upd.Status.CollisionCount = &n
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("daemonset %s/%s: bump collisionCount: %w", ds.Namespace, ds.Name, err)
	}
	return fmt.Errorf("daemonset %s/%s: %w", ds.Namespace, ds.Name, errHashCollision)
}

// pruneRevisions deletes old revisions beyond revisionHistoryLimit (default
// 10) that no live pod uses.
func (c *Controller) pruneRevisions(ctx context.Context, ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision, hash string, views []nodeView) error {
	limit := int32(10)
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = *ds.Spec.RevisionHistoryLimit
	}
	if len(revs) <= int(limit)+1 {
		return nil
	}
	inUse := map[string]bool{}
	for _, v := range views {
		for _, p := range v.pods {
			inUse[p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
		}
	}
	for _, r := range revisionsToPrune(revs, ds.Name+"-"+hash, inUse, limit) {
		if r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			continue
		}
		err := c.client.AppsV1().ControllerRevisions(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("daemonset %s/%s: delete revision %s: %w", ds.Namespace, ds.Name, r.Name, err)
		}
	}
	return nil
}
