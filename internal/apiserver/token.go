package apiserver

import (
	"fmt"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TokenIssuer signs a token for service account sa, bound to the object
// bound (nil for none) whose uid is boundUID, for audiences, valid for ttl.
type TokenIssuer func(sa *corev1.ServiceAccount, bound *authenticationv1.BoundObjectReference, boundUID string, podNode *NodeRef,
	audiences []string, ttl time.Duration) (token string, expires time.Time, err error)

// NodeRef names the node of a pod a token is bound to: upstream puts it
// in the token (ServiceAccountTokenPodNodeInfo), and the authenticated
// user then carries it (authentication.kubernetes.io/node-name, node-uid).
// UID is empty when the node object does not exist.
type NodeRef struct{ Name, UID string }

var tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// serveToken serves POST serviceaccounts/<name>/token (TokenRequest), as
// `kubectl create token` and the kubelet use it.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	if s.cfg.IssueToken == nil {
		return apierrors.NewServiceUnavailable("service account tokens are not configured on this server")
	}
	wr, err := readWrite(r)
	if err != nil {
		return err
	}
	obj, _, err := wr.decode(tokenRequestGVK, &authenticationv1.TokenRequest{})
	if err != nil {
		return err
	}
	req := obj.(*authenticationv1.TokenRequest)
	ctx := r.Context()
	sa := &corev1.ServiceAccount{}
	if err := sv.store.Get(ctx, sv.key(info.namespace, info.name), "", sa); err != nil {
		return storageError(err, sv.groupResource(), info.name)
	}
	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = s.cfg.APIAudiences
	}
	if req.Spec.ExpirationSeconds == nil || *req.Spec.ExpirationSeconds == 0 {
		d := int64(3600)
		req.Spec.ExpirationSeconds = &d
	}
	var errs field.ErrorList
	exp := field.NewPath("spec", "expirationSeconds")
	switch secs := *req.Spec.ExpirationSeconds; {
	case secs < 600:
		errs = append(errs, field.Invalid(exp, secs, "may not specify a duration less than 10 minutes"))
	case secs > 1<<32:
		errs = append(errs, field.Invalid(exp, secs, "may not specify a duration larger than 2^32 seconds"))
	}
	boundUID := ""
	var podNode *NodeRef
	if ref := req.Spec.BoundObjectRef; ref != nil {
		gvr, ok := map[string]schema.GroupVersionResource{
			"Pod": {Version: "v1", Resource: "pods"}, "Secret": {Version: "v1", Resource: "secrets"}, "Node": {Version: "v1", Resource: "nodes"},
		}[ref.Kind]
		path := field.NewPath("spec", "boundObjectRef")
		switch {
		case !ok || (ref.APIVersion != "" && ref.APIVersion != "v1"):
			errs = append(errs, field.NotSupported(path.Child("kind"), ref.Kind, []string{"Pod", "Secret", "Node"}))
		case ref.Name == "":
			errs = append(errs, field.Required(path.Child("name"), ""))
		case s.resources[gvr] == nil:
			errs = append(errs, field.NotSupported[string](path.Child("kind"), ref.Kind, nil))
		default:
			bsv := s.resources[gvr]
			ns := info.namespace
			if ref.Kind == "Node" {
				ns = ""
			}
			bound := bsv.stored.New()
			if err := bsv.store.Get(ctx, bsv.key(ns, ref.Name), "", bound); err != nil {
				return storageError(err, bsv.groupResource(), ref.Name)
			}
			m, _ := meta.Accessor(bound)
			boundUID = string(m.GetUID())
			if ref.UID != "" && string(ref.UID) != boundUID {
				return apierrors.NewConflict(bsv.groupResource(), ref.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
			}
			if pod, ok := bound.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
				podNode = &NodeRef{Name: pod.Spec.NodeName}
				if nsv := s.resources[schema.GroupVersionResource{Version: "v1", Resource: "nodes"}]; nsv != nil {
					node := &corev1.Node{}
					if err := nsv.store.Get(ctx, nsv.key("", pod.Spec.NodeName), "", node); err == nil {
						podNode.UID = string(node.UID)
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), info.name, errs)
	}
	ttl := time.Duration(*req.Spec.ExpirationSeconds) * time.Second
	token, expires, err := s.cfg.IssueToken(sa, req.Spec.BoundObjectRef, boundUID, podNode, req.Spec.Audiences, ttl)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	out := &authenticationv1.TokenRequest{
		TypeMeta:   metav1.TypeMeta{Kind: "TokenRequest", APIVersion: "authentication.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: info.name, Namespace: info.namespace, CreationTimestamp: metav1.Now()},
		Spec:       req.Spec,
		Status:     authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(expires)},
	}
	writeObject(w, http.StatusCreated, wr.format, out)
	return nil
}
