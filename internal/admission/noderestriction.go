package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/authorizer/node"
	"github.com/skiff-io/skiff/internal/localpath"
	"github.com/skiff-io/skiff/internal/storage"
)

// NodeRestriction is upstream's NodeRestriction admission plugin: it
// narrows the writes of kubelets (users "system:node:<name>" in group
// "system:nodes"), which the Node authorizer allows on every object of a
// kind, to their own objects:
//
//   - nodes: only its own Node; a new Node may not carry a configSource
//     nor, like an update, add, change or remove node-restriction.kubernetes.io
//     labels or kubernetes.io / k8s.io labels other than the kubelet's own
//     (hostname, os, arch, instance type, zone, region, and the
//     kubelet.kubernetes.io and node.kubernetes.io namespaces); an update
//     may not change its taints;
//   - pods: create only mirror pods bound to itself and owned by its Node,
//     referencing no service account, secret, config map or claim; delete
//     and evict only pods bound to itself; update only the status of pods
//     bound to itself, and not their labels;
//   - leases in kube-node-lease and csinodes: only those named after it;
//   - persistentvolumes (skiff's): only the removal of the local-path
//     finalizer from its own local-path volumes;
//   - podcertificaterequests: create only for a pod bound to itself, with
//     the pod's, its service account's and its own names and UIDs
//     (noderestriction_pcr.go).
//
// Other users pass. Messages are upstream's.
//
// Differences from upstream: persistentvolumeclaims/status, service
// account token requests (bound to a pod of the node), resourceslices and
// resourceclaims are not narrowed here; the Node authorizer already limits
// claims and tokens to the node's pods.
type NodeRestriction struct {
	// Pods and Nodes are the stores, with their key functions, that
	// evictions (the pod) and mirror pods (the node's uid) are checked
	// against.
	Pods    storage.Interface
	PodKey  func(namespace, name string) string
	Nodes   storage.Interface
	NodeKey func(name string) string
	// Accounts and AccountKey are the service accounts store that a
	// PodCertificateRequest's serviceAccountUID is checked against.
	Accounts   storage.Interface
	AccountKey func(namespace, name string) string
	// Authorizer decides whether a node may request a certificate from a
	// signer that the pod's volumes do not name; nil: it may not.
	Authorizer apiserver.Authorizer
}

var (
	nodesGR    = schema.GroupResource{Resource: "nodes"}
	leasesGR   = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	csinodesGR = schema.GroupResource{Group: "storage.k8s.io", Resource: "csinodes"}
	volumesGR  = schema.GroupResource{Resource: "persistentvolumes"}
)

// nodeIdentity is upstream's node identifier.
func nodeIdentity(u *apiserver.User) (name string, isNode bool) {
	rest, ok := strings.CutPrefix(u.Name, node.UserPrefix)
	if !ok || !slices.Contains(u.Groups, node.Group) {
		return "", false
	}
	return rest, true
}

func (p *NodeRestriction) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	u, ok := apiserver.UserFrom(ctx)
	if !ok {
		return nil
	}
	nodeName, isNode := nodeIdentity(u)
	if !isNode {
		return nil
	}
	gr := schema.GroupResource{Group: req.Resource.GroupVersion.Group, Resource: req.Resource.Name}
	forbid := func(err error) error { return forbidden(gr, req, err) }
	switch gr {
	case podsGR, nodesGR, leasesGR, csinodesGR, volumesGR, podCertificateRequestsGR:
	default:
		return nil
	}
	if nodeName == "" {
		return forbid(fmt.Errorf("could not determine node from user %q", u.Name))
	}
	switch gr {
	case podsGR:
		switch req.Sub {
		case "":
			return p.admitPod(ctx, nodeName, req, forbid)
		case "status":
			return admitPodStatus(nodeName, req, forbid)
		case "eviction":
			return p.admitPodEviction(ctx, nodeName, req, forbid)
		}
		return forbid(fmt.Errorf("unexpected pod subresource %q, only 'status' and 'eviction' are allowed", req.Sub))
	case nodesGR:
		return admitNode(nodeName, req, forbid)
	case leasesGR:
		if req.Namespace != node.LeaseNamespace {
			return forbid(fmt.Errorf("can only access leases in the %q system namespace", node.LeaseNamespace))
		}
		if objectName(req) != nodeName {
			return forbid(errors.New("can only access node lease with the same name as the requesting node"))
		}
	case csinodesGR:
		if objectName(req) != nodeName {
			return forbid(errors.New("can only access CSINode with the same name as the requesting node"))
		}
	case volumesGR:
		return admitLocalVolume(nodeName, req, forbid)
	case podCertificateRequestsGR:
		return p.admitPodCertificateRequest(ctx, nodeName, req, forbid)
	}
	return nil
}

// admitLocalVolume lets a node's write of a persistent volume (the Node
// authorizer allows only its local-path volumes) do nothing but drop the
// local-path finalizer, once its directory is dealt with.
func admitLocalVolume(nodeName string, req *apiserver.AdmissionRequest, forbid func(error) error) error {
	if req.Operation != apiserver.Update || req.Sub != "" {
		return forbid(fmt.Errorf("node %q can only remove the %s finalizer of its local-path volumes", nodeName, localpath.Finalizer))
	}
	pv, ok1 := req.Obj.(*corev1.PersistentVolume)
	old, ok2 := req.Old.(*corev1.PersistentVolume)
	if !ok1 || !ok2 {
		return apierrors.NewBadRequest("unexpected type")
	}
	if old.Labels[localpath.NodeLabel] != nodeName || old.Annotations[localpath.ProvisionedBy] != localpath.Provisioner {
		return forbid(fmt.Errorf("node %q can only modify the local-path volumes labelled %s=%s", nodeName, localpath.NodeLabel, nodeName))
	}
	want := slices.DeleteFunc(slices.Clone(old.Finalizers), func(f string) bool { return f == localpath.Finalizer })
	same := apiequality.Semantic.DeepEqual(pv.Spec, old.Spec) && apiequality.Semantic.DeepEqual(pv.Labels, old.Labels) &&
		apiequality.Semantic.DeepEqual(pv.Annotations, old.Annotations) && apiequality.Semantic.DeepEqual(pv.OwnerReferences, old.OwnerReferences)
	if !same || !slices.Equal(pv.Finalizers, want) {
		return forbid(fmt.Errorf("node %q can only remove the %s finalizer of its local-path volumes", nodeName, localpath.Finalizer))
	}
	return nil
}

// objectName is the name a write is about: the request's, or on create
// the new object's (upstream's extractResourceName).
func objectName(req *apiserver.AdmissionRequest) string {
	if req.Name != "" || req.Obj == nil {
		return req.Name
	}
	if m, err := meta.Accessor(req.Obj); err == nil {
		return m.GetName()
	}
	return ""
}

// forbidden is upstream's admission.NewForbidden: 403 on the resource
// (not the subresource) and the object's name.
func forbidden(gr schema.GroupResource, req *apiserver.AdmissionRequest, err error) error {
	return apierrors.NewForbidden(gr, objectName(req), err)
}

func (p *NodeRestriction) admitPod(ctx context.Context, nodeName string, req *apiserver.AdmissionRequest, forbid func(error) error) error {
	switch req.Operation {
	case apiserver.Create:
		pod, ok := req.Obj.(*corev1.Pod)
		if !ok {
			return apierrors.NewBadRequest(fmt.Sprintf("unexpected type %T", req.Obj))
		}
		return p.admitPodCreate(ctx, nodeName, pod, forbid)
	case apiserver.Delete:
		pod, ok := req.Old.(*corev1.Pod)
		if !ok {
			return apierrors.NewBadRequest(fmt.Sprintf("unexpected type %T", req.Old))
		}
		if pod.Spec.NodeName != nodeName {
			return forbid(fmt.Errorf("node %q can only delete pods with spec.nodeName set to itself", nodeName))
		}
		return nil
	}
	return forbid(fmt.Errorf("unexpected operation %q, node %q can only create and delete mirror pods", req.Operation, nodeName))
}

func (p *NodeRestriction) admitPodCreate(ctx context.Context, nodeName string, pod *corev1.Pod, forbid func(error) error) error {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; !mirror {
		return forbid(fmt.Errorf("pod does not have %q annotation, node %q can only create mirror pods", corev1.MirrorPodAnnotationKey, nodeName))
	}
	if pod.Spec.NodeName != nodeName {
		return forbid(fmt.Errorf("node %q can only create pods with spec.nodeName set to itself", nodeName))
	}
	switch len(pod.OwnerReferences) {
	case 0:
		return forbid(fmt.Errorf("node %q can only create pods with an owner reference set to itself", nodeName))
	case 1:
	default:
		return forbid(fmt.Errorf("node %q can only create pods with a single owner reference set to itself", nodeName))
	}
	owner := pod.OwnerReferences[0]
	if owner.APIVersion != "v1" || owner.Kind != "Node" || owner.Name != nodeName {
		return forbid(fmt.Errorf("node %q can only create pods with an owner reference set to itself", nodeName))
	}
	if owner.Controller == nil || !*owner.Controller {
		return forbid(fmt.Errorf("node %q can only create pods with a controller owner reference set to itself", nodeName))
	}
	if owner.BlockOwnerDeletion != nil && *owner.BlockOwnerDeletion {
		return forbid(fmt.Errorf("node %q must not set blockOwnerDeletion on an owner reference", nodeName))
	}
	n := &corev1.Node{}
	if err := getFromCache(ctx, p.Nodes, p.NodeKey(nodeName), n); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return forbid(fmt.Errorf("node %q not found", nodeName))
		}
		return forbid(err)
	}
	if owner.UID != n.UID {
		return forbid(fmt.Errorf("node %s UID mismatch, expected %s got %s", nodeName, owner.UID, n.UID))
	}
	if pod.Spec.ServiceAccountName != "" {
		return forbid(fmt.Errorf("node %q can not create pods that reference a service account", nodeName))
	}
	var secrets, configMaps, claims bool
	for _, r := range podReferences(pod) {
		switch r {
		case "secret":
			secrets = true
		case "configmap":
			configMaps = true
		case "claim":
			claims = true
		}
	}
	switch {
	case secrets:
		return forbid(fmt.Errorf("node %q can not create pods that reference secrets", nodeName))
	case configMaps:
		return forbid(fmt.Errorf("node %q can not create pods that reference configmaps", nodeName))
	case claims:
		return forbid(fmt.Errorf("node %q can not create pods that reference persistentvolumeclaims", nodeName))
	case len(pod.Spec.ResourceClaims) > 0:
		return forbid(fmt.Errorf("node %q can not create pods that reference resourceclaims", nodeName))
	}
	return nil
}

// podReferences lists the kinds of API object a pod references
// ("secret", "configmap", "claim"), once each kind is seen.
func podReferences(pod *corev1.Pod) []string {
	var kinds []string
	if len(pod.Spec.ImagePullSecrets) > 0 {
		kinds = append(kinds, "secret")
	}
	env := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					kinds = append(kinds, "secret")
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					kinds = append(kinds, "configmap")
				}
			}
			for _, f := range c.EnvFrom {
				if f.SecretRef != nil {
					kinds = append(kinds, "secret")
				}
				if f.ConfigMapRef != nil {
					kinds = append(kinds, "configmap")
				}
			}
		}
	}
	env(pod.Spec.InitContainers)
	env(pod.Spec.Containers)
	for _, c := range pod.Spec.EphemeralContainers {
		env([]corev1.Container{{Env: c.Env, EnvFrom: c.EnvFrom}})
	}
	for _, v := range pod.Spec.Volumes {
		vs := v.VolumeSource
		switch {
		case vs.Secret != nil, vs.AzureFile != nil,
			vs.CephFS != nil && vs.CephFS.SecretRef != nil, vs.Cinder != nil && vs.Cinder.SecretRef != nil,
			vs.FlexVolume != nil && vs.FlexVolume.SecretRef != nil, vs.ISCSI != nil && vs.ISCSI.SecretRef != nil,
			vs.RBD != nil && vs.RBD.SecretRef != nil, vs.ScaleIO != nil && vs.ScaleIO.SecretRef != nil,
			vs.StorageOS != nil && vs.StorageOS.SecretRef != nil, vs.CSI != nil && vs.CSI.NodePublishSecretRef != nil:
			kinds = append(kinds, "secret")
		case vs.ConfigMap != nil:
			kinds = append(kinds, "configmap")
		case vs.PersistentVolumeClaim != nil, vs.Ephemeral != nil:
			kinds = append(kinds, "claim")
		case vs.Projected != nil:
			for _, s := range vs.Projected.Sources {
				if s.Secret != nil {
					kinds = append(kinds, "secret")
				}
				if s.ConfigMap != nil {
					kinds = append(kinds, "configmap")
				}
			}
		}
	}
	return kinds
}

func admitPodStatus(nodeName string, req *apiserver.AdmissionRequest, forbid func(error) error) error {
	if req.Operation != apiserver.Update {
		return forbid(fmt.Errorf("unexpected operation %q", req.Operation))
	}
	old, ok1 := req.Old.(*corev1.Pod)
	pod, ok2 := req.Obj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return apierrors.NewBadRequest("unexpected type")
	}
	if old.Spec.NodeName != nodeName {
		return forbid(fmt.Errorf("node %q can only update pod status for pods with spec.nodeName set to itself", nodeName))
	}
	if !equalStringMaps(old.Labels, pod.Labels) {
		return forbid(fmt.Errorf("node %q cannot update labels through pod status", nodeName))
	}
	if !apiequality.Semantic.DeepEqual(old.Status.ResourceClaimStatuses, pod.Status.ResourceClaimStatuses) {
		return forbid(fmt.Errorf("node %q cannot update resource claim statues", nodeName))
	}
	return nil
}

func (p *NodeRestriction) admitPodEviction(ctx context.Context, nodeName string, req *apiserver.AdmissionRequest, forbid func(error) error) error {
	if req.Operation != apiserver.Create {
		return forbid(fmt.Errorf("unexpected operation %s", req.Operation))
	}
	name := req.Name
	if name == "" {
		if ev, ok := req.Obj.(*policyv1.Eviction); ok {
			name = ev.Name
		}
	}
	if name == "" {
		return forbid(errors.New("could not determine pod from request data"))
	}
	pod := &corev1.Pod{}
	if err := getFromCache(ctx, p.Pods, p.PodKey(req.Namespace, name), pod); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return apierrors.NewNotFound(podsGR, name)
		}
		return forbid(err)
	}
	if pod.Spec.NodeName != nodeName {
		return forbid(fmt.Errorf("node %s can only evict pods with spec.nodeName set to itself", nodeName))
	}
	return nil
}

func admitNode(nodeName string, req *apiserver.AdmissionRequest, forbid func(error) error) error {
	if name := objectName(req); name != nodeName {
		return forbid(fmt.Errorf("node %q is not allowed to modify node %q", nodeName, name))
	}
	switch req.Operation {
	case apiserver.Create:
		n, ok := req.Obj.(*corev1.Node)
		if !ok {
			return apierrors.NewBadRequest(fmt.Sprintf("unexpected type %T", req.Obj))
		}
		if n.Spec.ConfigSource != nil {
			return forbid(fmt.Errorf("node %q is not allowed to create pods with a non-nil configSource", nodeName))
		}
		if bad := forbiddenLabels(modifiedLabels(n.Labels, nil)); len(bad) > 0 {
			return forbid(fmt.Errorf("node %q is not allowed to set the following labels: %s", nodeName, strings.Join(bad, ", ")))
		}
	case apiserver.Update:
		n, ok1 := req.Obj.(*corev1.Node)
		old, ok2 := req.Old.(*corev1.Node)
		if !ok1 || !ok2 {
			return apierrors.NewBadRequest("unexpected type")
		}
		if n.Spec.ConfigSource != nil && !apiequality.Semantic.DeepEqual(n.Spec.ConfigSource, old.Spec.ConfigSource) {
			return forbid(fmt.Errorf("node %q is not allowed to update configSource to a new non-nil configSource", nodeName))
		}
		if !apiequality.Semantic.DeepEqual(n.Spec.Taints, old.Spec.Taints) {
			return forbid(fmt.Errorf("node %q is not allowed to modify taints", nodeName))
		}
		if bad := forbiddenLabels(modifiedLabels(n.Labels, old.Labels)); len(bad) > 0 {
			return forbid(fmt.Errorf("is not allowed to modify labels: %s", strings.Join(bad, ", ")))
		}
	}
	return nil
}

// modifiedLabels are the keys added, removed or changed.
func modifiedLabels(a, b map[string]string) []string {
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// kubeletLabels are the kubernetes.io labels a kubelet may set on its
// Node (upstream's kubeletapis.IsKubeletLabel).
var kubeletLabels = map[string]bool{
	corev1.LabelHostname:                true,
	corev1.LabelTopologyZone:            true,
	corev1.LabelTopologyRegion:          true,
	corev1.LabelFailureDomainBetaZone:   true,
	corev1.LabelFailureDomainBetaRegion: true,
	corev1.LabelInstanceType:            true,
	corev1.LabelInstanceTypeStable:      true,
	corev1.LabelOSStable:                true,
	corev1.LabelArchStable:              true,
	"beta.kubernetes.io/os":             true,
	"beta.kubernetes.io/arch":           true,
}

var kubeletLabelNamespaces = []string{corev1.LabelNamespaceSuffixKubelet, corev1.LabelNamespaceSuffixNode}

func labelNamespace(key string) string {
	if ns, _, ok := strings.Cut(key, "/"); ok {
		return ns
	}
	return ""
}

func inNamespace(ns, domain string) bool { return ns == domain || strings.HasSuffix(ns, "."+domain) }

func isKubeletLabel(key string) bool {
	if kubeletLabels[key] {
		return true
	}
	ns := labelNamespace(key)
	for _, d := range kubeletLabelNamespaces {
		if inNamespace(ns, d) {
			return true
		}
	}
	return false
}

// forbiddenLabels are the keys a kubelet may not set, sorted: the
// node-restriction.kubernetes.io namespace, and kubernetes.io and k8s.io
// labels that are not the kubelet's own.
func forbiddenLabels(keys []string) []string {
	var bad []string
	for _, k := range keys {
		ns := labelNamespace(k)
		kube := inNamespace(ns, "kubernetes.io") || inNamespace(ns, "k8s.io")
		if inNamespace(ns, corev1.LabelNamespaceNodeRestriction) || (kube && !isKubeletLabel(k)) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	return bad
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// getFromCache reads an object from the watch cache, and from etcd when
// the cache does not have it (yet).
func getFromCache(ctx context.Context, st storage.Interface, key string, obj runtime.Object) error {
	err := st.Get(ctx, key, "0", obj)
	if errors.Is(err, storage.ErrNotFound) {
		err = st.Get(ctx, key, "", obj)
	}
	return err
}
