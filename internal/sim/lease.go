package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Lease constants, as the kubelet uses them.
const (
	LeaseNamespace       = corev1.NamespaceNodeLease
	leaseDurationSeconds = 40
)

// syncLease renews node name's Lease and schedules the next renewal an
// interval later. The first renewal comes at a fraction of the interval
// after registration that depends on the node's name (leasePhase), so that
// nodes registered together do not renew together, and the registration
// burst is not slowed by Lease writes (a new node's Ready condition carries
// a fresh heartbeat time until then).
func (s *Sim) syncLease(ctx context.Context, name string) error {
	n := s.nodes[name]
	if n == nil {
		return nil
	}
	n.life.RLock()
	defer n.life.RUnlock()
	if n.dead() {
		return nil
	}
	if err := s.renewLease(ctx, n, metav1.NewMicroTime(time.Now())); err != nil {
		n.lease = nil // read it again next time
		return err
	}
	s.leaseQ.AddAfter(name, s.cfg.HeartbeatInterval)
	return nil
}

// leasePhase is how long after registration node name first renews its
// Lease: a fraction of interval in (0, interval], fixed by the name.
func leasePhase(name string, interval time.Duration) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	frac := float64(h.Sum32()%1000+1) / 1000
	return time.Duration(frac * float64(interval))
}

func (s *Sim) renewLease(ctx context.Context, n *simNode, now metav1.MicroTime) error {
	leases := s.client.CoordinationV1().Leases(LeaseNamespace)
	cur := n.lease
	if cur == nil {
		// Create first: on a fresh cluster that is one request, not two.
		created, err := leases.Create(ctx, s.buildLease(n, now), metav1.CreateOptions{})
		if err == nil {
			created.ManagedFields = nil
			n.lease = created
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("lease %q: %w", n.name, err)
		}
		if cur, err = leases.Get(ctx, n.name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("lease %q: %w", n.name, err)
		}
	}
	upd := cur.DeepCopy()
	want := s.buildLease(n, now)
	upd.Spec = want.Spec
	if len(upd.OwnerReferences) == 0 {
		upd.OwnerReferences = want.OwnerReferences
	}
	out, err := leases.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("renewing lease %q: %w", n.name, err)
	}
	out.ManagedFields = nil
	n.lease = out
	return nil
}

// buildLease is node n's Lease renewed at now, owned by the Node so that
// deleting the node deletes it.
func (s *Sim) buildLease(n *simNode, now metav1.MicroTime) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: LeaseNamespace},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(n.name),
			LeaseDurationSeconds: ptr.To(int32(leaseDurationSeconds)),
			RenewTime:            &now,
		},
	}
	if uid := n.uid.Load(); uid != nil && *uid != "" {
		l.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: n.name, UID: *uid,
		}}
	}
	return l
}
