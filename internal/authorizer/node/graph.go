package node

import (
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/localpath"
)

// kind is the type of an object a node may be granted through its pods.
type kind uint8

const (
	kindPod kind = iota
	kindSecret
	kindConfigMap
	kindPVC
	kindServiceAccount
)

// ref is one object a pod references, in the pod's namespace.
type ref struct {
	kind kind
	name string
}

// grant is one object granted to one node: the key of the counts.
type grant struct {
	node      string
	kind      kind
	namespace string
	name      string
}

type nsName struct{ namespace, name string }

// podEntry is what the graph remembers of a pod: enough to take back what
// it granted.
type podEntry struct {
	node string
	refs []ref // sorted, without duplicates; includes the pod itself
}

// graph holds, for every node, the objects its pods reference. The zero
// value is not usable; use newGraph. It is safe for concurrent use.
type graph struct {
	mu   sync.RWMutex
	pods map[nsName]*podEntry
	// counts is how many pods bound to a node reference an object.
	counts map[grant]int
	// pvClaims is the claim each persistent volume's spec.claimRef names.
	pvClaims map[string]nsName
	// localPVs is the node that holds each local-path volume.
	localPVs map[string]string
}

func newGraph() *graph {
	return &graph{pods: map[nsName]*podEntry{}, counts: map[grant]int{}, pvClaims: map[string]nsName{}, localPVs: map[string]string{}}
}

// putPod records pod as it now is: a pod not bound to a node grants
// nothing.
func (g *graph) putPod(pod *corev1.Pod) {
	key := nsName{pod.Namespace, pod.Name}
	var next *podEntry
	if pod.Spec.NodeName != "" {
		next = &podEntry{node: pod.Spec.NodeName, refs: podRefs(pod)}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.pods[key]
	if prev != nil && next != nil && prev.node == next.node && slices.Equal(prev.refs, next.refs) {
		return // a status update: nothing granted changes
	}
	g.forget(key, prev)
	if next == nil {
		return
	}
	g.pods[key] = next
	for _, r := range next.refs {
		g.counts[grant{next.node, r.kind, key.namespace, r.name}]++
	}
}

// deletePod takes back what the pod granted.
func (g *graph) deletePod(namespace, name string) {
	key := nsName{namespace, name}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forget(key, g.pods[key])
}

// forget must be called with mu held.
func (g *graph) forget(key nsName, e *podEntry) {
	if e == nil {
		return
	}
	delete(g.pods, key)
	for _, r := range e.refs {
		k := grant{e.node, r.kind, key.namespace, r.name}
		if g.counts[k] <= 1 {
			delete(g.counts, k)
		} else {
			g.counts[k]--
		}
	}
}

func (g *graph) putPV(pv *corev1.PersistentVolume) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if node := pv.Labels[localpath.NodeLabel]; node != "" && pv.Annotations[localpath.ProvisionedBy] == localpath.Provisioner {
		g.localPVs[pv.Name] = node
	} else {
		delete(g.localPVs, pv.Name)
	}
	c := pv.Spec.ClaimRef
	if c == nil || c.Name == "" || c.Namespace == "" || (c.Kind != "" && c.Kind != "PersistentVolumeClaim") {
		delete(g.pvClaims, pv.Name)
		return
	}
	g.pvClaims[pv.Name] = nsName{c.Namespace, c.Name}
}

func (g *graph) deletePV(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pvClaims, name)
	delete(g.localPVs, name)
}

// holdsLocalPV reports whether pv is a local-path volume of node.
func (g *graph) holdsLocalPV(node, pv string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.localPVs[pv] == node
}

// has reports whether a pod bound to node references the object.
func (g *graph) has(node string, k kind, namespace, name string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.counts[grant{node, k, namespace, name}] > 0
}

// hasPV reports whether the claim a persistent volume is bound to is
// mounted by a pod bound to node.
func (g *graph) hasPV(node, pv string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c, ok := g.pvClaims[pv]
	return ok && g.counts[grant{node, kindPVC, c.namespace, c.name}] > 0
}

// podRefs lists what a pod references, upstream's VisitPodSecretNames and
// VisitPodConfigmapNames over every container kind, its claims and its
// service account, plus the pod itself.
func podRefs(pod *corev1.Pod) []ref {
	refs := []ref{{kindPod, pod.Name}}
	add := func(k kind, name string) {
		if name != "" {
			refs = append(refs, ref{k, name})
		}
	}
	add(kindServiceAccount, pod.Spec.ServiceAccountName)
	for _, s := range pod.Spec.ImagePullSecrets {
		add(kindSecret, s.Name)
	}
	envs := func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range env {
			if e.ValueFrom == nil {
				continue
			}
			if s := e.ValueFrom.SecretKeyRef; s != nil {
				add(kindSecret, s.Name)
			}
			if c := e.ValueFrom.ConfigMapKeyRef; c != nil {
				add(kindConfigMap, c.Name)
			}
		}
		for _, f := range from {
			if f.SecretRef != nil {
				add(kindSecret, f.SecretRef.Name)
			}
			if f.ConfigMapRef != nil {
				add(kindConfigMap, f.ConfigMapRef.Name)
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range pod.Spec.Containers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		envs(c.Env, c.EnvFrom)
	}
	secretRef := func(r *corev1.LocalObjectReference) {
		if r != nil {
			add(kindSecret, r.Name)
		}
	}
	for _, v := range pod.Spec.Volumes {
		vs := v.VolumeSource
		switch {
		case vs.Secret != nil:
			add(kindSecret, vs.Secret.SecretName)
		case vs.ConfigMap != nil:
			add(kindConfigMap, vs.ConfigMap.Name)
		case vs.Projected != nil:
			for _, s := range vs.Projected.Sources {
				if s.Secret != nil {
					add(kindSecret, s.Secret.Name)
				}
				if s.ConfigMap != nil {
					add(kindConfigMap, s.ConfigMap.Name)
				}
			}
		case vs.PersistentVolumeClaim != nil:
			add(kindPVC, vs.PersistentVolumeClaim.ClaimName)
		case vs.Ephemeral != nil:
			add(kindPVC, pod.Name+"-"+v.Name)
		case vs.AzureFile != nil:
			add(kindSecret, vs.AzureFile.SecretName)
		case vs.CephFS != nil:
			secretRef(vs.CephFS.SecretRef)
		case vs.Cinder != nil:
			secretRef(vs.Cinder.SecretRef)
		case vs.FlexVolume != nil:
			secretRef(vs.FlexVolume.SecretRef)
		case vs.ISCSI != nil:
			secretRef(vs.ISCSI.SecretRef)
		case vs.RBD != nil:
			secretRef(vs.RBD.SecretRef)
		case vs.ScaleIO != nil:
			secretRef(vs.ScaleIO.SecretRef)
		case vs.StorageOS != nil:
			secretRef(vs.StorageOS.SecretRef)
		case vs.CSI != nil:
			secretRef(vs.CSI.NodePublishSecretRef)
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return slices.Compact(refs)
}
