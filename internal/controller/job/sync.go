package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// completionIndexEnv is the env var an Indexed Job's containers read their
// index from.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

// sync reconciles one Job: it claims its pods (adopting matching orphans,
// releasing pods that stopped matching), decides (decide) what to count,
// which conditions to set and which pods to create or delete, does it,
// writes status when it changed and records in the Job's ledger what the
// written status now holds.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, n, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	job, err := c.jobs.Jobs(ns).Get(n)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		c.ledgers.drop(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", key, err)
	}
	if job.DeletionTimestamp != nil {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation rejects these; never claim pods with a selector
		// that matches everything.
		c.log.Info("invalid selector", "job", key, "err", err)
		return nil
	}
	led := c.ledgers.get(key, job.UID)
	if led.stale(job.ResourceVersion) {
		// The cache has not caught up with our last status write; its
		// update event queues the Job again.
		return nil
	}
	now := c.clock.Now()
	pods, err := c.claimPods(ctx, job, selector)
	if err != nil {
		return err
	}
	view := led.view()
	d := decide(input{job: job, pods: pods, ledger: view, now: now, backoff: c.podFailureBackoff, maxBackoff: c.maxPodFailureBackoff})

	if len(d.create)+len(d.remove) > 0 {
		if !c.exp.Satisfied(key, now) {
			d.create, d.remove = nil, nil
		} else {
			d.status.Active += c.act(ctx, key, job, led, d, now)
		}
	}

	var written string
	if !apiequality.Semantic.DeepEqual(job.Status, d.status) {
		upd := job.DeepCopy()
		upd.Status = d.status
		got, err := c.client.BatchV1().Jobs(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("job %s: update status: %w", key, err)
		}
		written = got.ResourceVersion
		for _, e := range d.events {
			c.recorder.Event(job, e.typ, e.reason, e.message)
		}
	}
	if finished(job) {
		c.ledgers.drop(key)
		return nil
	}
	led.commit(view, d, written)
	if d.requeue > 0 {
		c.queue.AddAfter(key, d.requeue)
	}
	if !finished(&batchv1.Job{Status: d.status}) && !(job.Spec.Suspend != nil && *job.Spec.Suspend) {
		if left, ok := deadlineLeft(d.status.StartTime, job.Spec.ActiveDeadlineSeconds, now); ok && left > 0 {
			c.queue.AddAfter(key, left)
		}
	}
	return nil
}

// act deletes and creates pods as planned (creations in slow-start
// batches: 1, 2, 4, ... stopping at the first failing batch) under
// expectations, and returns how many pods it created.
func (c *Controller) act(ctx context.Context, key string, job *batchv1.Job, led *ledger, p *decision, now time.Time) int32 {
	delKeys := make([]string, len(p.remove))
	for i, pod := range p.remove {
		delKeys[i] = pod.Namespace + "/" + pod.Name
	}
	c.exp.Expect(key, len(p.create), delKeys, now)
	led.deleting(p.remove)
	for i, pod := range p.remove {
		uid := pod.UID
		err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil {
			c.exp.DeletionObserved(key, delKeys[i])
			if !apierrors.IsNotFound(err) {
				led.notDeleting(pod)
				c.log.Info("deleting pod failed", "job", key, "pod", pod.Name, "err", err)
				c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			}
			continue
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
	}
	var created int32
	var mu sync.Mutex
	rest := p.create
	for batch := 1; len(rest) > 0; batch *= 2 {
		n := min(batch, len(rest))
		var wg sync.WaitGroup
		var failed bool
		for _, idx := range rest[:n] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pod := newPod(job, idx, p.indexed)
				if f, ok := p.failures[idx]; ok {
					setIndexFailures(pod, f[0], f[1])
				}
				got, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					c.exp.CreationObserved(key)
					failed = true
					if !errors.Is(err, context.Canceled) {
						c.log.Info("creating pod failed", "job", key, "err", err)
						c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
					}
					return
				}
				created++
				c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", got.Name)
			}()
		}
		wg.Wait()
		rest = rest[n:]
		if failed {
			for range rest {
				c.exp.CreationObserved(key)
			}
			break
		}
	}
	return created
}

// newPod builds a pod of job from its template; for an Indexed Job it
// carries the completion index in an annotation and a label, as the
// hostname "<job>-<index>" (unless the template sets one) and in the
// JOB_COMPLETION_INDEX env var of every container.
func newPod(job *batchv1.Job, index int, indexed bool) *corev1.Pod {
	gen := job.Name + "-"
	if indexed {
		gen = job.Name + "-" + strconv.Itoa(index) + "-"
	}
	pod := podset.FromTemplate(&job.Spec.Template, job, gvk, "", gen)
	if !indexed {
		return pod
	}
	idx := strconv.Itoa(index)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = idx
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = idx
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = job.Name + "-" + idx
	}
	env := corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
	}}}
	addEnv := func(cs []corev1.Container) {
		for i := range cs {
			if !hasEnv(cs[i].Env, completionIndexEnv) {
				cs[i].Env = append(cs[i].Env, env)
			}
		}
	}
	addEnv(pod.Spec.InitContainers)
	addEnv(pod.Spec.Containers)
	return pod
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// setIndexFailures writes an Indexed Job pod's failure count annotations
// (backoffLimitPerIndex): counted always, as upstream does, ignored only
// when not zero.
func setIndexFailures(pod *corev1.Pod, counted, ignored int32) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(int(counted))
	if ignored > 0 {
		pod.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(int(ignored))
	}
}
