package server

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/serviceaccount"
	"github.com/skiff-io/skiff/internal/storage"
)

// serviceAccountTokens wires token issuance (serviceaccounts/token) and
// the bearer-token authenticator that accepts what it issued.
type serviceAccountTokens struct {
	signer *serviceaccount.Signer
	stores map[string]storage.Interface
}

func newServiceAccountTokens(key *ecdsa.PrivateKey) (*serviceAccountTokens, error) {
	s, err := serviceaccount.NewSigner(key, serviceaccount.DefaultIssuer)
	if err != nil {
		return nil, err
	}
	return &serviceAccountTokens{signer: s}, nil
}

func (t *serviceAccountTokens) issue(sa *corev1.ServiceAccount, bound *authenticationv1.BoundObjectReference, boundUID string,
	podNode *apiserver.NodeRef, audiences []string, ttl time.Duration) (string, time.Time, error) {
	now := time.Now()
	c := serviceaccount.Claims{Audience: audiences, Kube: serviceaccount.Private{
		Namespace:      sa.Namespace,
		ServiceAccount: serviceaccount.Ref{Name: sa.Name, UID: string(sa.UID)},
	}}
	if bound != nil {
		ref := &serviceaccount.Ref{Name: bound.Name, UID: boundUID}
		switch bound.Kind {
		case "Pod":
			c.Kube.Pod = ref
			if podNode != nil {
				c.Kube.Node = &serviceaccount.Ref{Name: podNode.Name, UID: podNode.UID}
			}
		case "Secret":
			c.Kube.Secret = ref
		case "Node":
			c.Kube.Node = ref
		}
	}
	tok, err := t.signer.Sign(c, ttl, now)
	return tok, now.Add(ttl), err
}

func (t *serviceAccountTokens) authenticator() apiserver.Authenticator {
	return &serviceaccount.Authenticator{
		Public:    &t.signer.Key.PublicKey,
		Issuer:    serviceaccount.DefaultIssuer,
		Audiences: []string{serviceaccount.DefaultIssuer},
		Lookup:    t.lookup,
	}
}

var tokenBoundKinds = map[string]func() runtime.Object{
	"serviceaccounts": func() runtime.Object { return &corev1.ServiceAccount{} },
	"pods":            func() runtime.Object { return &corev1.Pod{} },
	"secrets":         func() runtime.Object { return &corev1.Secret{} },
	"nodes":           func() runtime.Object { return &corev1.Node{} },
}

// lookup reads an object's uid from the watch cache, and from etcd when
// the cache does not have it (yet).
func (t *serviceAccountTokens) lookup(ctx context.Context, resource, namespace, name string) (string, error) {
	newObj, ok := tokenBoundKinds[resource]
	prefix := apiserver.StorageKeyPrefix(schema.GroupVersionResource{Version: "v1", Resource: resource})
	st := t.stores[prefix]
	if !ok || st == nil {
		return "", fmt.Errorf("%s are not served", resource)
	}
	key := prefix + name
	if namespace != "" {
		key = prefix + namespace + "/" + name
	}
	obj := newObj()
	err := st.Get(ctx, key, "0", obj)
	if errors.Is(err, storage.ErrNotFound) {
		err = st.Get(ctx, key, "", obj)
	}
	if err != nil {
		return "", err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	return string(m.GetUID()), nil
}
