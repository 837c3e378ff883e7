package nodelifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncNode judges one node's health and writes what follows from it: the
// Unknown conditions of a silent node, and the managed taints.
func (c *Controller) syncNode(ctx context.Context, key string) error {
	node, err := c.nodes.Get(key)
	if apierrors.IsNotFound(err) {
		c.forgetTaints(key, nil)
		return nil
	}
	if err != nil {
		return err
	}
	var lease *coordinationv1.Lease
	if l, err := c.leases.Leases(leaseNamespace).Get(key); err == nil {
		lease = l
	}
	now := c.clock.Now()
	st := nodeHealth(node, lease, now, c.opts.GracePeriod)

	if st.stale {
		if conds, changed := unknownConditions(node, now); changed {
			next := node.DeepCopy()
			next.Status.Conditions = conds
			node, err = c.client.CoreV1().Nodes().UpdateStatus(ctx, next, metav1.UpdateOptions{})
			if err != nil {
				return fmt.Errorf("node %s: setting conditions Unknown: %w", key, err)
			}
			c.log.Info("node stopped posting status", "node", key, "heartbeat", st.heartbeat)
			c.recorder.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", key)
		}
	}

	wanted := wantedTaints(node, st.health)
	taints, changed := reconcileTaints(node.Spec.Taints, wanted, now)
	if changed && addsNoExecute(node.Spec.Taints, taints) {
		if d := c.evictions.wait(); d > 0 {
			// Rate-limited: apply the NoSchedule part now, the NoExecute
			// taints when the slot comes.
			taints, changed = reconcileTaints(node.Spec.Taints, withoutNoExecute(wanted, node.Spec.Taints), now)
			c.nodeQ.AddAfter(key, d)
		}
	}
	if changed {
		next := node.DeepCopy()
		next.Spec.Taints = taints
		if _, err := c.client.CoreV1().Nodes().Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("node %s: updating taints: %w", key, err)
		}
		c.log.Info("node taints updated", "node", key, "health", st.health.String(), "taints", taintList(taints))
	}
	c.forgetTaints(key, taints)

	// Look again when the heartbeat runs out (the periodic pass is the
	// safety net).
	if !st.stale {
		c.nodeQ.AddAfter(key, st.heartbeat.Add(c.opts.GracePeriod).Sub(now)+10*time.Millisecond)
	}
	return nil
}

// addsNoExecute reports whether next has a NoExecute taint that cur lacks.
func addsNoExecute(cur, next []corev1.Taint) bool {
	for _, n := range next {
		if n.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		found := false
		for _, t := range cur {
			if t.Key == n.Key && t.Effect == n.Effect {
				found = true
			}
		}
		if !found {
			return true
		}
	}
	return false
}

// withoutNoExecute drops from wanted the NoExecute taints that cur does
// not have yet.
func withoutNoExecute(wanted, cur []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, w := range wanted {
		if w.Effect == corev1.TaintEffectNoExecute && !hasTaint(cur, w) {
			continue
		}
		out = append(out, w)
	}
	return out
}

func hasTaint(ts []corev1.Taint, t corev1.Taint) bool {
	for _, x := range ts {
		if x.Key == t.Key && x.Effect == t.Effect {
			return true
		}
	}
	return false
}

func taintList(ts []corev1.Taint) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.Key+":"+string(t.Effect))
	}
	return strings.Join(s, ",")
}

// forgetTaints drops the first-seen times of node's NoExecute taints that
// are no longer in present.
func (c *Controller) forgetTaints(node string, present []corev1.Taint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := node + "\x00"
	for k := range c.firstSeen {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		keep := false
		for _, t := range present {
			if taintKey(node, t) == k {
				keep = true
			}
		}
		if !keep {
			delete(c.firstSeen, k)
		}
	}
}

func taintKey(node string, t corev1.Taint) string {
	return node + "\x00" + t.Key + "\x00" + string(t.Effect)
}

// since returns when the controller first saw node's taint t (for taints
// without timeAdded).
func (c *Controller) since(node string) func(corev1.Taint) time.Time {
	return func(t corev1.Taint) time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		k := taintKey(node, t)
		if ts, ok := c.firstSeen[k]; ok {
			return ts
		}
		now := c.clock.Now()
		c.firstSeen[k] = now
		return now
	}
}
