package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"sync"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
)

// Annotations the scheduler reads and writes on claims and volumes,
// upstream's (k8s.io/component-helpers/storage/volume).
const (
	annSelectedNode         = "volume.kubernetes.io/selected-node"
	annBindCompleted        = "pv.kubernetes.io/bind-completed"
	annBoundByController    = "pv.kubernetes.io/bound-by-controller"
	notSupportedProvisioner = "kubernetes.io/no-provisioner"
)

// pvClassIndex indexes the volume informer by storage class name.
const pvClassIndex = "scheduler.skiff.io/storage-class"

func pvClassIndexFunc(obj any) ([]string, error) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok {
		return nil, nil
	}
	return []string{pvClass(pv)}, nil
}

// volumeBinder is the scheduler's view of claims, volumes and storage
// classes — the informers' objects, overlaid with the claims and volumes
// it assumed (decided to bind, the write not yet seen by the informer),
// as upstream's assume cache — and the bookkeeping of VolumeBinding's
// PreBind. Its methods are safe for concurrent use.
type volumeBinder struct {
	claims  corelisters.PersistentVolumeClaimLister
	pvs     cache.Indexer // with pvClassIndex
	classes storagelisters.StorageClassLister

	mu            sync.Mutex
	assumedPVs    map[string]*v1.PersistentVolume
	assumedClaims map[string]*v1.PersistentVolumeClaim // by namespace/name
	// affinities caches compiled volume node affinity by volume name,
	// valid while the object is the same.
	affinities map[string]compiledAffinity
	// changed is closed (and replaced) at the next change to a claim or
	// volume, which waiting PreBinds watch.
	changed chan struct{}
}

type compiledAffinity struct {
	pv       *v1.PersistentVolume
	affinity *pvAffinity
}

func newVolumeBinder(claims corelisters.PersistentVolumeClaimLister, pvs cache.Indexer, classes storagelisters.StorageClassLister) *volumeBinder {
	return &volumeBinder{
		claims:        claims,
		pvs:           pvs,
		classes:       classes,
		assumedPVs:    map[string]*v1.PersistentVolume{},
		assumedClaims: map[string]*v1.PersistentVolumeClaim{},
		affinities:    map[string]compiledAffinity{},
		changed:       make(chan struct{}),
	}
}

// podState runs the volume filters' PreFilter for pod p: upstream's
// VolumeRestrictions (every persistentVolumeClaim volume's claim must
// exist; which use ReadWriteOncePod) and VolumeBinding (claims must exist
// and not be lost or deleted, and every unbound one must wait for its
// first consumer), then gathers what the per-node filter needs.
func (b *volumeBinder) podState(p *podInfo) *volumeState {
	pod := p.pod
	st := &volumeState{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.PersistentVolumeClaim == nil {
			continue
		}
		c, err := b.claims.PersistentVolumeClaims(pod.Namespace).Get(v.PersistentVolumeClaim.ClaimName)
		if err != nil {
			st.unschedulable = err.Error()
			return st
		}
		if key := pod.Namespace + "/" + c.Name; slices.Contains(c.Spec.AccessModes, v1.ReadWriteOncePod) && !slices.Contains(st.rwop, key) {
			st.rwop = append(st.rwop, key)
		}
	}
	var names []string
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		name, ephemeral := claimName(pod, v)
		if name == "" || slices.Contains(names, name) {
			continue
		}
		names = append(names, name)
		c, err := b.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		switch {
		case err != nil && ephemeral && apierrors.IsNotFound(err):
			st.unschedulable = fmt.Sprintf("waiting for ephemeral volume controller to create the persistentvolumeclaim %q", name)
		case err != nil:
			st.unschedulable = err.Error()
		case c.Status.Phase == v1.ClaimLost:
			st.unschedulable = fmt.Sprintf("persistentvolumeclaim %q bound to non-existent persistentvolume %q", c.Name, c.Spec.VolumeName)
		case c.DeletionTimestamp != nil:
			st.unschedulable = fmt.Sprintf("persistentvolumeclaim %q is being deleted", c.Name)
		case ephemeral && !metav1.IsControlledBy(c, pod):
			st.unschedulable = fmt.Sprintf("PVC %s/%s was not created for pod %s/%s (pod is not owner)", c.Namespace, c.Name, pod.Namespace, pod.Name)
		}
		if st.unschedulable != "" {
			return st
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	immediate := false
	for _, name := range names {
		c, err := b.claimLocked(pod.Namespace, name)
		if err != nil {
			st.unschedulable = err.Error()
			return st
		}
		if claimFullyBound(c) {
			bv := boundVolume{}
			if pv := b.pvLocked(c.Spec.VolumeName); pv != nil {
				bv = boundVolume{pv: pv, affinity: b.affinityLocked(pv)}
			}
			st.bound = append(st.bound, bv)
			continue
		}
		class, err := b.delayBindingClass(c)
		if err != nil {
			st.unschedulable = err.Error()
			return st
		}
		if class == nil || c.Spec.VolumeName != "" {
			// Immediate binding, or pre-bound to a volume: the volume
			// controller binds it, not the scheduler.
			immediate = true
			continue
		}
		uc, err := b.unboundClaimLocked(c, class)
		if err != nil {
			st.unschedulable = err.Error()
			return st
		}
		st.unbound = append(st.unbound, uc)
	}
	if immediate {
		st.unschedulable = msgUnboundImmediate
		return st
	}
	slices.SortStableFunc(st.unbound, func(a, b *unboundClaim) int {
		qa, qb := a.claim.Spec.Resources.Requests[v1.ResourceStorage], b.claim.Spec.Resources.Requests[v1.ResourceStorage]
		return qa.Cmp(qb)
	})
	return st
}

// claimName returns the name of the claim behind a volume ("" if none)
// and whether it is a generic ephemeral volume's, named after the pod.
func claimName(pod *v1.Pod, v *v1.Volume) (string, bool) {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName, false
	case v.Ephemeral != nil:
		return pod.Name + "-" + v.Name, true
	}
	return "", false
}

// claimFullyBound reports whether the volume controller finished binding
// the claim, as upstream decides it.
func claimFullyBound(c *v1.PersistentVolumeClaim) bool {
	return c.Spec.VolumeName != "" && metav1.HasAnnotation(c.ObjectMeta, annBindCompleted)
}

// claimClass is the claim's storage class name: the beta annotation, else
// spec.storageClassName.
func claimClass(c *v1.PersistentVolumeClaim) string {
	if class, ok := c.Annotations[v1.BetaStorageClassAnnotation]; ok {
		return class
	}
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

// pvClass is the volume's storage class name: the beta annotation, else
// spec.storageClassName.
func pvClass(pv *v1.PersistentVolume) string {
	if class, ok := pv.Annotations[v1.BetaStorageClassAnnotation]; ok {
		return class
	}
	return pv.Spec.StorageClassName
}

// delayBindingClass returns the claim's class if it binds on the first
// consumer, nil if the claim binds immediately: it has no class, or its
// class does not exist (as upstream's IsDelayBindingMode).
func (b *volumeBinder) delayBindingClass(c *v1.PersistentVolumeClaim) (*storagev1.StorageClass, error) {
	name := claimClass(c)
	if name == "" {
		return nil, nil
	}
	class, err := b.classes.Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if class.VolumeBindingMode == nil {
		return nil, fmt.Errorf("VolumeBindingMode not set for StorageClass %q", name)
	}
	if *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return nil, nil
	}
	return class, nil
}

// unboundClaimLocked gathers what can satisfy the WaitForFirstConsumer
// claim c of class: the node-independent half of upstream's
// FindMatchingVolume (size, volume mode, deletion, phase, selector, class,
// access modes) and the class's provisioning. The caller holds b.mu.
func (b *volumeBinder) unboundClaimLocked(c *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (*unboundClaim, error) {
	uc := &unboundClaim{claim: c}
	uc.selectedNode, uc.hasSelectedNode = c.Annotations[annSelectedNode]
	if p := class.Provisioner; p != "" && p != notSupportedProvisioner {
		uc.provisioner = true
		if len(class.AllowedTopologies) > 0 {
			uc.topology = compileTopology(class.AllowedTopologies)
		}
	}
	if uc.hasSelectedNode {
		return uc, nil // provisioning on that node was asked for
	}
	var selector labels.Selector
	if c.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(c.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("error creating internal label selector for claim: %s/%s: %w", c.Namespace, c.Name, err)
		}
		selector = sel
	}
	request := c.Spec.Resources.Requests[v1.ResourceStorage]
	objs, err := b.pvs.ByIndex(pvClassIndex, class.Name)
	if err != nil {
		return nil, err
	}
	for _, obj := range objs {
		pv, ok := obj.(*v1.PersistentVolume)
		if !ok {
			continue
		}
		if a := b.assumedPVs[pv.Name]; a != nil {
			pv = a
		}
		size := pv.Spec.Capacity[v1.ResourceStorage]
		if size.Cmp(request) < 0 || volumeModeOf(c.Spec.VolumeMode) != volumeModeOf(pv.Spec.VolumeMode) || pv.DeletionTimestamp != nil {
			continue
		}
		if ref := pv.Spec.ClaimRef; ref != nil {
			if volumeBoundToClaim(pv, c) && uc.prebound == nil {
				uc.prebound = &candidateVolume{pv: pv, affinity: b.affinityLocked(pv)}
			}
			continue
		}
		if pv.Status.Phase != v1.VolumeAvailable || (selector != nil && !selector.Matches(labels.Set(pv.Labels))) ||
			pvClass(pv) != class.Name || !accessModesSatisfied(c, pv) {
			continue
		}
		uc.candidates = append(uc.candidates, candidateVolume{pv: pv, affinity: b.affinityLocked(pv)})
	}
	slices.SortStableFunc(uc.candidates, func(x, y candidateVolume) int {
		qx, qy := x.pv.Spec.Capacity[v1.ResourceStorage], y.pv.Spec.Capacity[v1.ResourceStorage]
		return qx.Cmp(qy)
	})
	return uc, nil
}

func volumeModeOf(m *v1.PersistentVolumeMode) v1.PersistentVolumeMode {
	if m == nil {
		return v1.PersistentVolumeFilesystem
	}
	return *m
}

// volumeBoundToClaim reports whether the volume's claimRef names the claim
// (and its UID, if the ref has one).
func volumeBoundToClaim(pv *v1.PersistentVolume, c *v1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	return ref != nil && ref.Name == c.Name && ref.Namespace == c.Namespace && (ref.UID == "" || ref.UID == c.UID)
}

// accessModesSatisfied reports whether the volume offers every access mode
// the claim asks for.
func accessModesSatisfied(c *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) bool {
	for _, m := range c.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return false
		}
	}
	return true
}

// compileTopology compiles a class's allowedTopologies: terms ORed, each
// a conjunction of "key in values"; an empty term selects nothing.
func compileTopology(terms []v1.TopologySelectorTerm) []labels.Selector {
	out := make([]labels.Selector, 0, len(terms))
	for _, t := range terms {
		if len(t.MatchLabelExpressions) == 0 {
			continue
		}
		sel := labels.NewSelector()
		valid := true
		for _, e := range t.MatchLabelExpressions {
			r, err := labels.NewRequirement(e.Key, selection.In, e.Values)
			if err != nil {
				valid = false
				break
			}
			sel = sel.Add(*r)
		}
		if valid {
			out = append(out, sel)
		}
	}
	return out
}

func (b *volumeBinder) claimLocked(namespace, name string) (*v1.PersistentVolumeClaim, error) {
	if c := b.assumedClaims[namespace+"/"+name]; c != nil {
		return c, nil
	}
	return b.claims.PersistentVolumeClaims(namespace).Get(name)
}

func (b *volumeBinder) pvLocked(name string) *v1.PersistentVolume {
	if pv := b.assumedPVs[name]; pv != nil {
		return pv
	}
	obj, ok, err := b.pvs.GetByKey(name)
	if err != nil || !ok {
		return nil
	}
	pv, _ := obj.(*v1.PersistentVolume)
	return pv
}

func (b *volumeBinder) affinityLocked(pv *v1.PersistentVolume) *pvAffinity {
	if ca, ok := b.affinities[pv.Name]; ok && ca.pv == pv {
		return ca.affinity
	}
	a := compilePVAffinity(pv)
	b.affinities[pv.Name] = compiledAffinity{pv: pv, affinity: a}
	return a
}

// assume records plan's bindings as if written, so that the next decisions
// see the volumes taken and the claims' selected node, and marks in plan
// the objects PreBind must write: each volume gets a claimRef to its
// claim (and pv.kubernetes.io/bound-by-controller, as upstream's
// GetBindVolumeToClaim), each claim to provision the selected-node
// annotation.
func (b *volumeBinder) assume(plan *volumePlan, node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range plan.static {
		sb := &plan.static[i]
		c := sb.claim
		ref := sb.pv.Spec.ClaimRef
		refOK := ref != nil && ref.Name == c.Name && ref.Namespace == c.Namespace && ref.UID == c.UID
		_, annotated := sb.pv.Annotations[annBoundByController]
		setAnnotation := !volumeBoundToClaim(sb.pv, c) && !annotated
		if refOK && !setAnnotation {
			continue
		}
		pv := sb.pv.DeepCopy()
		if !refOK {
			pv.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion}
		}
		if setAnnotation {
			metav1.SetMetaDataAnnotation(&pv.ObjectMeta, annBoundByController, "yes")
		}
		sb.pv, sb.written = pv, true
		b.assumedPVs[pv.Name] = pv
	}
	for _, pr := range plan.provision {
		if pr.claim.Annotations[annSelectedNode] == node {
			continue
		}
		c := pr.claim.DeepCopy()
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, annSelectedNode, node)
		pr.claim, pr.written = c, true
		b.assumedClaims[c.Namespace+"/"+c.Name] = c
	}
}

// revert forgets what assume recorded for plan (PreBind failed); the
// informers' objects count again.
func (b *volumeBinder) revert(plan *volumePlan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sb := range plan.static {
		if sb.written && b.assumedPVs[sb.pv.Name] == sb.pv {
			delete(b.assumedPVs, sb.pv.Name)
		}
	}
	for _, pr := range plan.provision {
		key := pr.claim.Namespace + "/" + pr.claim.Name
		if pr.written && b.assumedClaims[key] == pr.claim {
			delete(b.assumedClaims, key)
		}
	}
}

// setPV is the informer reporting a volume (nil pv with name: deleted). An
// assumed volume gives way to a newer object, as upstream's assume cache.
func (b *volumeBinder) setPV(name string, pv *v1.PersistentVolume) {
	b.mu.Lock()
	if a := b.assumedPVs[name]; a != nil && (pv == nil || newerVersion(pv.ResourceVersion, a.ResourceVersion)) {
		delete(b.assumedPVs, name)
	}
	if pv == nil {
		delete(b.affinities, name)
	}
	b.notifyLocked()
	b.mu.Unlock()
}

// setClaim is the informer reporting a claim (nil c: deleted).
func (b *volumeBinder) setClaim(key string, c *v1.PersistentVolumeClaim) {
	b.mu.Lock()
	if a := b.assumedClaims[key]; a != nil && (c == nil || newerVersion(c.ResourceVersion, a.ResourceVersion)) {
		delete(b.assumedClaims, key)
	}
	b.notifyLocked()
	b.mu.Unlock()
}

// newerVersion reports whether resourceVersion rv is newer than old;
// resourceVersions are etcd revisions. One that does not parse counts as
// newer, so the informer's object wins.
func newerVersion(rv, old string) bool {
	n, err1 := strconv.ParseUint(rv, 10, 64)
	o, err2 := strconv.ParseUint(old, 10, 64)
	return err1 != nil || err2 != nil || n > o
}

// changes returns a channel closed at the next notify.
func (b *volumeBinder) changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// notify wakes the waiting PreBinds.
func (b *volumeBinder) notify() {
	b.mu.Lock()
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *volumeBinder) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}
