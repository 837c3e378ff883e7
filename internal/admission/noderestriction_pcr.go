package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/authorizer/node"
	"github.com/skiff-io/skiff/internal/storage"
)

var podCertificateRequestsGR = certificatesv1.Resource("podcertificaterequests")

// admitPodCertificateRequest lets a node create a PodCertificateRequest
// only for a pod bound to it, naming the node, the pod and the pod's
// service account as they are (names and UIDs), for a signer one of the
// pod's podCertificate volumes names, or one the node is authorized for
// with verb "request-serviceaccounts-podcertificate-signer" on a resource
// named after the signer ("/" becomes ":"), as upstream. Mismatched UIDs,
// and objects not found, may be the watch cache lagging: they are errors
// the kubelet retries, not 403s.
func (p *NodeRestriction) admitPodCertificateRequest(ctx context.Context, nodeName string, req *apiserver.AdmissionRequest, forbid func(error) error) error {
	if req.Operation != apiserver.Create {
		return forbid(fmt.Errorf("unexpected operation %v", req.Operation))
	}
	if req.Sub != "" {
		return forbid(fmt.Errorf("unexpected subresource %v", req.Sub))
	}
	pcr, ok := req.Obj.(*certificatesv1.PodCertificateRequest)
	if !ok {
		return forbid(fmt.Errorf("unexpected type %T", req.Obj))
	}
	ns, spec := req.Namespace, &pcr.Spec
	podRef := ns + "/" + spec.PodName
	if string(spec.NodeName) != nodeName {
		return forbid(fmt.Errorf("PodCertificateRequest.Spec.NodeName=%q, which is not the requesting node %q", spec.NodeName, nodeName))
	}
	n := &corev1.Node{}
	if err := getFromCache(ctx, p.Nodes, p.NodeKey(nodeName), n); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("while retrieving node %q named in the PodCertificateRequest: %w", nodeName, err)
		}
		return forbid(fmt.Errorf("while retrieving node %q named in the PodCertificateRequest: %w", nodeName, err))
	}
	if n.UID != spec.NodeUID {
		return fmt.Errorf("PodCertificateRequest for pod %q names node UID %q, inconsistent with the running node (%q)", podRef, spec.NodeUID, n.UID)
	}
	pod := &corev1.Pod{}
	if err := getFromCache(ctx, p.Pods, p.PodKey(ns, spec.PodName), pod); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("while retrieving pod %q named in the PodCertificateRequest: %w", podRef, err)
		}
		return forbid(fmt.Errorf("while retrieving pod %q named in the PodCertificateRequest: %w", podRef, err))
	}
	if pod.UID != spec.PodUID {
		return fmt.Errorf("PodCertificateRequest for pod %q contains pod UID (%q) which differs from running pod %q", podRef, spec.PodUID, pod.UID)
	}
	if pod.Spec.NodeName != nodeName {
		return forbid(fmt.Errorf("pod %q is not running on node %q named in the PodCertificateRequest", podRef, spec.NodeName))
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return forbid(fmt.Errorf("pod %q is a mirror pod", podRef))
	}
	if spec.ServiceAccountName != pod.Spec.ServiceAccountName {
		return forbid(fmt.Errorf("PodCertificateRequest for pod %q contains serviceAccountName (%q) that differs from running pod (%q)", podRef, spec.ServiceAccountName, pod.Spec.ServiceAccountName))
	}
	sa := &corev1.ServiceAccount{}
	saRef := ns + "/" + spec.ServiceAccountName
	if err := getFromCache(ctx, p.Accounts, p.AccountKey(ns, spec.ServiceAccountName), sa); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("while retrieving service account %q named in the PodCertificateRequest: %w", saRef, err)
		}
		return forbid(fmt.Errorf("while retrieving service account %q named in the PodCertificateRequest: %w", saRef, err))
	}
	if sa.UID != spec.ServiceAccountUID {
		return fmt.Errorf("PodCertificateRequest for pod %q names service account UID %q, which differs from the running service account (%q)", podRef, spec.ServiceAccountUID, sa.UID)
	}
	if podMountsSigner(pod, spec.SignerName) {
		return nil
	}
	if p.Authorizer != nil {
		u, _ := apiserver.UserFrom(ctx)
		ok, _, err := p.Authorizer.Authorize(ctx, apiserver.Attributes{
			User: u, Verb: "request-serviceaccounts-podcertificate-signer", APIGroup: certificatesv1.GroupName,
			APIVersion: req.Resource.GroupVersion.Version, Resource: strings.ReplaceAll(spec.SignerName, "/", ":"),
			Namespace: ns, Name: spec.ServiceAccountName, ResourceRequest: true,
		})
		if ok {
			return nil
		}
		if err != nil {
			return forbid(fmt.Errorf("error authorizing %s to request podcertificaterequests for signer %q: %w", node.UserPrefix+nodeName, spec.SignerName, err))
		}
	}
	return forbid(fmt.Errorf("pod %q does not mount a podCertificate projected volume for signer %q", podRef, spec.SignerName))
}

// podMountsSigner reports whether one of the pod's projected volumes has
// a podCertificate source for signer.
func podMountsSigner(pod *corev1.Pod, signer string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.PodCertificate != nil && s.PodCertificate.SignerName == signer {
				return true
			}
		}
	}
	return false
}
