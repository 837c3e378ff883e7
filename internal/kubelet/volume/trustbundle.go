package volume

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// maxBundleSelectorLength is upstream's limit on a clusterTrustBundle
// projection's label selector, as a string.
const maxBundleSelectorLength = 100 * 1024

// errNoBundleMatched is upstream's error for a signerName projection that
// selects no bundle and is not optional.
var errNoBundleMatched = errors.New("combination of signerName and labelSelector matched zero ClusterTrustBundles")

// trustAnchors returns the content of a clusterTrustBundle projection:
// the certificates of the bundle it names, or of every bundle of its
// signer that its labelSelector matches (a nil selector matches none, an
// empty one all), each once, PEM-encoded in orderAnchors's order. Nothing
// found is an error unless the projection is optional, which then yields
// an empty file, as upstream.
func (m *Manager) trustAnchors(ctx context.Context, p *v1.ClusterTrustBundleProjection) ([]byte, error) {
	optional := p.Optional != nil && *p.Optional
	switch {
	case p.Name != nil:
		b, err := m.src.ClusterTrustBundle(ctx, *p.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				if optional {
					return []byte{}, nil
				}
				// As upstream's informer lister words it.
				err = apierrors.NewNotFound(certificatesv1.Resource("clustertrustbundle"), *p.Name)
			}
			return nil, fmt.Errorf("while getting ClusterTrustBundle: %w", err)
		}
		return m.anchorsPEM([]string{b.Spec.TrustBundle}), nil
	case p.SignerName != nil:
		sel, err := metav1.LabelSelectorAsSelector(p.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("while parsing label selector: %w", err)
		}
		if n := len(sel.String()); n > maxBundleSelectorLength {
			return nil, fmt.Errorf("label selector length (%d) is larger than %d", n, maxBundleSelectorLength)
		}
		var bundles []string
		if p.LabelSelector != nil {
			list, err := m.src.ClusterTrustBundles(ctx, *p.SignerName, sel)
			if err != nil {
				return nil, fmt.Errorf("while listing ClusterTrustBundles matching label selector %v: %w", p.LabelSelector, err)
			}
			for i := range list {
				// The source filters already; a bundle of another
				// signer must still never reach the file.
				if list[i].Spec.SignerName == *p.SignerName && sel.Matches(labels.Set(list[i].Labels)) {
					bundles = append(bundles, list[i].Spec.TrustBundle)
				}
			}
		}
		if len(bundles) == 0 {
			if optional {
				return []byte{}, nil
			}
			return nil, errNoBundleMatched
		}
		return m.anchorsPEM(bundles), nil
	default:
		return nil, errors.New("ClusterTrustBundle projection requires either name or signerName to be set")
	}
}

func (m *Manager) anchorsPEM(bundles []string) []byte {
	return anchorsPEM(bundles, m.anchorOrderKey)
}

// anchorsPEM is the PEM of every distinct certificate block in bundles
// (the same DER in several bundles, or twice in one, is written once;
// headers and text between blocks are dropped), ordered by orderAnchors
// with key.
func anchorsPEM(bundles []string, key uint64) []byte {
	seen := map[string]bool{}
	var ders []string
	for _, b := range bundles {
		rest := []byte(b)
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if der := string(blk.Bytes); !seen[der] {
				seen[der] = true
				ders = append(ders, der)
			}
		}
	}
	out := []byte{}
	for _, der := range orderAnchors(ders, key) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(der)})...)
	}
	return out
}

// orderAnchors sorts distinct DER certificates into an order that depends
// only on the certificates and key. Upstream's kubelet sorts them and then
// shuffles them, so that no consumer comes to rely on an order, and keeps
// the result in a cache; skiff reads bundles on every pod sync, so it
// shuffles deterministically instead: by a hash of key and the
// certificate. A Manager draws its key once, so a file keeps its order
// (and is not rewritten) while the kubelet runs and changes it across
// restarts, as upstream's does.
func orderAnchors(ders []string, key uint64) []string {
	type ranked struct {
		rank uint64
		der  string
	}
	r := make([]ranked, len(ders))
	var k [8]byte
	binary.LittleEndian.PutUint64(k[:], key)
	for i, d := range ders {
		h := fnv.New64a()
		h.Write(k[:])
		h.Write([]byte(d))
		r[i] = ranked{h.Sum64(), d}
	}
	slices.SortFunc(r, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.der, b.der))
	})
	out := make([]string, len(r))
	for i := range r {
		out[i] = r[i].der
	}
	return out
}
