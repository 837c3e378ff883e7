package certificates

import (
	"context"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// clusterTrustBundles is the descriptor of certificates.k8s.io/v1
// ClusterTrustBundles: cluster-scoped sets of X.509 trust anchors, each
// optionally linked to a signer. As upstream's strategy, it has no status
// and sets no metadata.generation. Who may link a bundle to a signer (verb
// "attest" on signers) is the ClusterTrustBundleAttest admission plugin's
// to decide (internal/admission/ctbattest.go).
func clusterTrustBundles() *registry.Resource {
	return &registry.Resource{
		GroupVersion: certificatesv1.SchemeGroupVersion,
		Name:         "clustertrustbundles",
		Singular:     "clustertrustbundle",
		Kind:         "ClusterTrustBundle",
		Namespaced:   false,
		New:          func() runtime.Object { return &certificatesv1.ClusterTrustBundle{} },
		NewList:      func() runtime.Object { return &certificatesv1.ClusterTrustBundleList{} },
		Strategy: registry.Strategy{
			// Upstream's strategy leaves the object as sent: no status to
			// reset, no generation.
			PrepareForCreate: func(context.Context, runtime.Object) {},
			PrepareForUpdate: func(context.Context, runtime.Object, runtime.Object) {},
			Validate:         validateBundleCreate,
			ValidateUpdate:   validateBundleUpdate,
			// The name's rule depends on spec.signerName, so Validate
			// checks it (validateBundleName); this only keeps names that
			// cannot be a path segment out of storage keys.
			NameValidation: registry.NameIsPathSegment,
		},
		Table: bundleTable,
		Fields: func(obj runtime.Object) fields.Set {
			b, _ := obj.(*certificatesv1.ClusterTrustBundle)
			if b == nil {
				return fields.Set{"metadata.name": "", "spec.signerName": ""}
			}
			return fields.Set{"metadata.name": b.Name, "spec.signerName": b.Spec.SignerName}
		},
	}
}

// bundleTable is upstream's `kubectl get clustertrustbundles`: NAME
// SIGNERNAME, without AGE.
var bundleTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "SignerName", Type: "string", Description: certificatesv1.ClusterTrustBundleSpec{}.SwaggerDoc()["signerName"]},
	},
	Row: func(obj runtime.Object) []interface{} {
		b, ok := obj.(*certificatesv1.ClusterTrustBundle)
		if !ok {
			return nil
		}
		signer := "<none>"
		if b.Spec.SignerName != "" {
			signer = b.Spec.SignerName
		}
		return []interface{}{b.Name, signer}
	},
}
