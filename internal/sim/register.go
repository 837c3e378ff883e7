package sim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// syncNode registers node name, or, once registered, puts its Ready and
// pressure conditions back when something (a node lifecycle controller)
// changed them while the node is alive, as a kubelet's next status update
// would. It never touches taints after registration.
func (s *Sim) syncNode(ctx context.Context, name string) error {
	n := s.nodes[name]
	if n == nil {
		return nil
	}
	n.life.RLock()
	defer n.life.RUnlock()
	if n.gone.Load() || (n.killed.Load() && n.registered.Load()) {
		return nil
	}
	cur, err := s.nodeLister.Get(name)
	switch {
	case apierrors.IsNotFound(err) && n.registered.Load():
		n.gone.Store(true)
		s.log.Info("node deleted from the API; it stays gone", "node", name)
		return nil
	case apierrors.IsNotFound(err):
		return s.registerNode(ctx, n)
	case err != nil:
		return fmt.Errorf("node %q: %w", name, err)
	case !n.registered.Load():
		return s.reregisterNode(ctx, n, cur)
	}
	conds, changed := healthyConditions(cur.Status.Conditions, metav1.NewTime(time.Now()))
	if !changed {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Status.Conditions = conds
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %q: restoring Ready: %w", name, err)
	}
	s.log.Info("node Ready restored", "node", name)
	return nil
}

// registerNode creates the node with its status. A node that exists
// but is not in the cache (created by someone else, without SimLabel) is
// updated instead.
func (s *Sim) registerNode(ctx context.Context, n *simNode) error {
	want := buildNode(s.tmpl, n.name, n.index, metav1.NewTime(time.Now()))
	created, err := s.client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := s.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("node %q: %w", n.name, gerr)
		}
		return s.reregisterNode(ctx, n, cur)
	}
	if err != nil {
		return fmt.Errorf("registering node %q: %w", n.name, err)
	}
	s.markRegistered(n, created)
	return nil
}

// reregisterNode takes over a node that already exists (the simulator
// restarted): adds its labels and taints and writes a fresh Ready status,
// keeping what others set.
func (s *Sim) reregisterNode(ctx context.Context, n *simNode, cur *corev1.Node) error {
	now := metav1.NewTime(time.Now())
	want := buildNode(s.tmpl, n.name, n.index, now)
	upd, changed := mergeNodeMeta(cur, want)
	if changed {
		var err error
		if upd, err = s.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("re-registering node %q: %w", n.name, err)
		}
	} else {
		upd = cur.DeepCopy()
	}
	conds, _ := healthyConditions(upd.Status.Conditions, now)
	for i := range conds {
		if isHealthyType(conds[i].Type) {
			conds[i].LastHeartbeatTime = now // a status report, as after a kubelet restart
		}
	}
	upd.Status = want.Status
	upd.Status.Conditions = conds
	out, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("re-registering node %q status: %w", n.name, err)
	}
	s.markRegistered(n, out)
	return nil
}

// nodeHandler queues a registered, live node whose Ready condition is no
// longer True, and any node of ours that is deleted.
func (s *Sim) nodeHandler() cache.ResourceEventHandlerFuncs {
	check := func(obj any) {
		node, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		if n := s.nodes[node.Name]; n != nil && n.registered.Load() && !n.dead() && !nodeReady(node) {
			s.nodeQ.Add(node.Name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    check,
		UpdateFunc: func(_, obj any) { check(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if node, ok := obj.(*corev1.Node); ok && s.nodes[node.Name] != nil {
				s.nodeQ.Add(node.Name)
			}
		},
	}
}
