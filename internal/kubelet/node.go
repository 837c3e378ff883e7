package kubelet

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

const (
	leaseNamespace       = "kube-node-lease"
	leaseDurationSeconds = 40
)

// register creates the Node, or brings an existing one (a restarted
// kubelet) up to date, and waits until the runtime answers.
func (k *Kubelet) register(ctx context.Context) error {
	info, err := k.cfg.Runtime.Version(ctx, "v1")
	if err != nil {
		return fmt.Errorf("container runtime: %w", err)
	}
	k.runtime = info.RuntimeName
	k.runtimeVersion = info.RuntimeName + "://" + info.RuntimeVersion
	nodes := k.cfg.Client.CoreV1().Nodes()
	want := k.buildNode(ctx, time.Now())
	for {
		cur, err := nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			created, err := nodes.Create(ctx, want, metav1.CreateOptions{})
			if err == nil {
				k.setNode(created)
				k.log.Info("node registered")
				return k.writeNodeStatus(ctx, created)
			}
			if !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("registering node: %w", err)
			}
			continue
		case err != nil:
			return fmt.Errorf("registering node: %w", err)
		}
		upd := cur.DeepCopy()
		for key, v := range want.Labels {
			upd.Labels = setDefault(upd.Labels, key, v)
		}
		for key, v := range want.Annotations {
			metav1.SetMetaDataAnnotation(&upd.ObjectMeta, key, v)
		}
		if !apiequality.Semantic.DeepEqual(cur.Labels, upd.Labels) || !apiequality.Semantic.DeepEqual(cur.Annotations, upd.Annotations) {
			if upd, err = nodes.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				if apierrors.IsConflict(err) {
					continue
				}
				return fmt.Errorf("updating node: %w", err)
			}
		}
		k.setNode(upd)
		return k.writeNodeStatus(ctx, upd)
	}
}

func setDefault(m map[string]string, key, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[key] = v
	return m
}

func (k *Kubelet) setNode(n *corev1.Node) {
	k.mu.Lock()
	k.node = n
	k.mu.Unlock()
}

// currentNode is the last Node the kubelet read or wrote.
func (k *Kubelet) currentNode() *corev1.Node {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.node
}

// heartbeat renews the Lease every LeasePeriod, writes node status when it
// changes or NodeStatusPeriod has passed, and hands the podCIDR to the
// network configuration once the node IPAM controller has set it. It
// looks every 2 s, and every 200 ms until the node is first Ready (for at
// most a minute), so that a starting node is Ready as soon as its network
// is, not a poll or two later.
func (k *Kubelet) heartbeat(ctx context.Context) {
	const settled, starting, startingFor = 2 * time.Second, 200 * time.Millisecond, time.Minute
	lease := time.NewTicker(k.cfg.LeasePeriod)
	defer lease.Stop()
	status := time.NewTimer(starting)
	defer status.Stop()
	began := time.Now()
	wasReady := false
	cidr := ""
	if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
		k.log.Warn("renewing node lease", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("renewing node lease", "err", err)
			}
		case <-status.C:
			k.syncNodeStatus(ctx, &cidr)
			wasReady = wasReady || nodeReady(k.currentNode())
			if wasReady || time.Since(began) > startingFor {
				status.Reset(settled)
			} else {
				status.Reset(starting)
			}
		}
	}
}

// syncNodeStatus reads the Node, configures the pod network when its
// podCIDR (*cidr is the one configured) is new, and writes node status.
func (k *Kubelet) syncNodeStatus(ctx context.Context, cidr *string) {
	n, err := k.cfg.Client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return
	}
	if n.Spec.PodCIDR != "" && n.Spec.PodCIDR != *cidr && k.cfg.OnPodCIDR != nil {
		if err := k.cfg.OnPodCIDR(n.Spec.PodCIDR); err != nil {
			k.log.Warn("pod network configuration", "podCIDR", n.Spec.PodCIDR, "err", err)
		} else {
			*cidr = n.Spec.PodCIDR
			k.log.Info("pod network configured", "podCIDR", *cidr)
		}
	}
	if err := k.writeNodeStatus(ctx, n); err != nil && ctx.Err() == nil {
		k.log.Warn("node status", "err", err)
	}
}

// nodeReady reports whether n's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	if n == nil {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// writeNodeStatus writes status when it changed, or when the last write
// is older than NodeStatusPeriod.
func (k *Kubelet) writeNodeStatus(ctx context.Context, cur *corev1.Node) error {
	now := time.Now()
	want := k.buildNode(ctx, now)
	upd := cur.DeepCopy()
	upd.Status.Capacity = want.Status.Capacity
	upd.Status.Allocatable = want.Status.Allocatable
	keepExtendedResources(upd, cur)
	upd.Status.Addresses = want.Status.Addresses
	upd.Status.DaemonEndpoints = want.Status.DaemonEndpoints
	upd.Status.NodeInfo = want.Status.NodeInfo
	stale := true
	for _, c := range cur.Status.Conditions {
		if c.Type == corev1.NodeReady && now.Sub(c.LastHeartbeatTime.Time) < k.cfg.NodeStatusPeriod {
			stale = false
		}
	}
	upd.Status.Conditions = mergeNodeConditions(cur.Status.Conditions, want.Status.Conditions, stale)
	if !stale && apiequality.Semantic.DeepEqual(cur.Status, upd.Status) {
		return nil
	}
	out, err := k.cfg.Client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	k.setNode(out)
	return nil
}

// keepExtendedResources carries over the extended resources others
// advertise in cur's capacity (a cluster operator's patch of
// example.com/dongle, say): the kubelet owns only the native resources.
// As upstream's kubelet, allocatable follows capacity for them.
func keepExtendedResources(upd, cur *corev1.Node) {
	for name, q := range cur.Status.Capacity {
		if _, mine := upd.Status.Capacity[name]; mine || !isExtendedResource(name) {
			continue
		}
		if upd.Status.Capacity == nil {
			upd.Status.Capacity = corev1.ResourceList{}
		}
		if upd.Status.Allocatable == nil {
			upd.Status.Allocatable = corev1.ResourceList{}
		}
		upd.Status.Capacity[name] = q.DeepCopy()
		upd.Status.Allocatable[name] = q.DeepCopy()
	}
}

// isExtendedResource reports whether name is outside the native
// resources (unprefixed, or under kubernetes.io/) and not a quota
// "requests." name, as upstream defines extended resources.
func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") && !strings.HasPrefix(s, "requests.")
}

// mergeNodeConditions takes the kubelet's conditions from want, keeping
// transition (and, unless heartbeat, heartbeat) times of unchanged ones,
// and keeps conditions other components own.
func mergeNodeConditions(cur, want []corev1.NodeCondition, heartbeat bool) []corev1.NodeCondition {
	out := make([]corev1.NodeCondition, 0, len(want)+len(cur))
	mine := map[corev1.NodeConditionType]bool{}
	for _, w := range want {
		mine[w.Type] = true
		for _, c := range cur {
			if c.Type == w.Type && c.Status == w.Status {
				w.LastTransitionTime = c.LastTransitionTime
				if !heartbeat && c.Reason == w.Reason && c.Message == w.Message {
					w.LastHeartbeatTime = c.LastHeartbeatTime
				}
			}
		}
		out = append(out, w)
	}
	for _, c := range cur {
		if !mine[c.Type] {
			out = append(out, c)
		}
	}
	return out
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (k *Kubelet) renewLease(ctx context.Context) error {
	leases := k.cfg.Client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	cur, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Namespace: leaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(k.cfg.NodeName), LeaseDurationSeconds: ptr.To(int32(leaseDurationSeconds)), RenewTime: &now,
			},
		}
		if n := k.currentNode(); n != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Spec.RenewTime = &now
	cur.Spec.HolderIdentity = ptr.To(k.cfg.NodeName)
	cur.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDurationSeconds))
	_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// runtimeConditions says whether the runtime and its network are ready,
// and if not, upstream's message for the Ready condition.
func (k *Kubelet) runtimeConditions(ctx context.Context) (bool, string) {
	st, err := k.cfg.Runtime.Status(ctx, false)
	if err != nil {
		return false, fmt.Sprintf("container runtime is down: %v", err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if c.Status {
			continue
		}
		switch c.Type {
		case runtimeapi.RuntimeReady:
			return false, fmt.Sprintf("container runtime status check may not have completed yet: RuntimeReady=false reason:%s message:%s", c.Reason, c.Message)
		case runtimeapi.NetworkReady:
			return false, fmt.Sprintf("container runtime network not ready: NetworkReady=false reason:%s message:%s", c.Reason, c.Message)
		}
	}
	return true, ""
}
