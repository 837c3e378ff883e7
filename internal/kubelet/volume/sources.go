package volume

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// Sources is where volume and environment content comes from and where
// persistentVolumeClaim volumes are resolved. The kubelet backs it with the
// API server (NewClientSources); tests use fakes.
type Sources interface {
	ContentSources
	ClaimSources
	TrustBundleSources
}

// ContentSources is where the content of configMap, secret and projected
// volumes, and of environment variables, comes from.
type ContentSources interface {
	// ConfigMap returns the named ConfigMap. A missing one is reported with
	// an error for which apierrors.IsNotFound is true.
	ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	// Secret returns the named Secret. A missing one is reported with an
	// error for which apierrors.IsNotFound is true.
	Secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
	// Token asks for a token of the service account (the TokenRequest
	// subresource) and returns the answer with Status filled in.
	Token(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// ClaimSources resolves persistentVolumeClaim volumes. A kubelet may read
// only the claims of pods bound to its node and the PVs bound to those
// claims (the Node authorizer), which is all it asks for.
type ClaimSources interface {
	// PersistentVolumeClaim returns the named claim. A missing one is
	// reported with an error for which apierrors.IsNotFound is true, worded
	// as the API server words it (upstream's kubelet shows that text).
	PersistentVolumeClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error)
	// PersistentVolume returns the named PersistentVolume, with the same
	// contract for a missing one.
	PersistentVolume(ctx context.Context, name string) (*v1.PersistentVolume, error)
}

// TrustBundleSources is where clusterTrustBundle projections read their
// ClusterTrustBundles. A kubelet may read every bundle (the Node
// authorizer's system:node rules, as upstream): trust anchors are public.
type TrustBundleSources interface {
	// ClusterTrustBundle returns the named bundle. A missing one is
	// reported with an error for which apierrors.IsNotFound is true.
	ClusterTrustBundle(ctx context.Context, name string) (*certificatesv1.ClusterTrustBundle, error)
	// ClusterTrustBundles returns the bundles linked to signerName whose
	// labels match selector, in any order; none is not an error.
	ClusterTrustBundles(ctx context.Context, signerName string, selector labels.Selector) ([]certificatesv1.ClusterTrustBundle, error)
}

// NewClientSources returns Sources that read through client-go with plain
// GETs and TokenRequest creates; nothing is cached.
func NewClientSources(c kubernetes.Interface) Sources {
	return clientSources{c: c}
}

type clientSources struct{ c kubernetes.Interface }

func (s clientSources) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return s.c.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s clientSources) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	return s.c.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s clientSources) PersistentVolumeClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error) {
	return s.c.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s clientSources) PersistentVolume(ctx context.Context, name string) (*v1.PersistentVolume, error) {
	return s.c.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}

func (s clientSources) ClusterTrustBundle(ctx context.Context, name string) (*certificatesv1.ClusterTrustBundle, error) {
	return s.c.CertificatesV1().ClusterTrustBundles().Get(ctx, name, metav1.GetOptions{})
}

// ClusterTrustBundles lists with a spec.signerName field selector, so
// that only the signer's bundles cross the wire.
func (s clientSources) ClusterTrustBundles(ctx context.Context, signerName string, selector labels.Selector) ([]certificatesv1.ClusterTrustBundle, error) {
	if _, selectable := selector.Requirements(); !selectable {
		// labels.Nothing(), whose String() "" would select everything.
		return nil, nil
	}
	l, err := s.c.CertificatesV1().ClusterTrustBundles().List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signerName", signerName).String(),
		LabelSelector: selector.String(),
	})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (s clientSources) Token(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	tr, err := s.c.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for service account %s/%s: %w", namespace, serviceAccount, err)
	}
	return tr, nil
}

// GetConfigMap fetches a ConfigMap and, when it is missing, returns the
// error upstream's kubelet reports: `configmap "x" not found` (singular
// resource, as its configmap manager words it, not the API's "configmaps").
// It is shared with the envvars package so both speak alike.
func GetConfigMap(ctx context.Context, src ContentSources, namespace, name string) (*v1.ConfigMap, error) {
	cm, err := src.ConfigMap(ctx, namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
		}
		return nil, err
	}
	return cm, nil
}

// GetSecret is GetConfigMap for Secrets: `secret "x" not found`.
func GetSecret(ctx context.Context, src ContentSources, namespace, name string) (*v1.Secret, error) {
	s, err := src.Secret(ctx, namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
		}
		return nil, err
	}
	return s, nil
}
