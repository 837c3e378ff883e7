package volume

import (
	"context"
	"errors"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodCertificates supplies the credentials of podCertificate projections
// (internal/kubelet/podcert).
type PodCertificates interface {
	// CredentialBundle returns the PEM private key and the PEM
	// certificate chain, leaf first, for the index-th source, p, of the
	// pod's projected volume named volume. It never waits for a signer:
	// until a certificate is issued it returns an error, and the volume
	// (so the pod) is not set up until a later SetUp gets one. Calls for
	// one source return the same key and chain until a refreshed
	// certificate replaces them.
	CredentialBundle(ctx context.Context, pod *v1.Pod, volume string, index int, p *v1.PodCertificateProjection) (key, chain []byte, err error)
	// ForgetPod drops the pod's keys, certificates and pending requests.
	ForgetPod(uid types.UID)
}

// SetPodCertificates makes podCertificate projections work, with pc as
// their source; without it they fail. Call it before the first pod is
// set up.
func (m *Manager) SetPodCertificates(pc PodCertificates) { m.podCerts = pc }

// podCertificatePayload is the content of a podCertificate projection:
// the key followed by the chain at credentialBundlePath, the key alone at
// keyPath, the chain alone at certificateChainPath (each when set), with
// the mode of other owned files (ownedFileMode), as upstream.
func (m *Manager) podCertificatePayload(ctx context.Context, pod *v1.Pod, volume string, index int, p *v1.PodCertificateProjection, defaultMode os.FileMode) (map[string]fileProjection, error) {
	if m.podCerts == nil {
		return nil, errors.New("podCertificate projections are not supported by this node")
	}
	key, chain, err := m.podCerts.CredentialBundle(ctx, pod, volume, index, p)
	if err != nil {
		return nil, err
	}
	mode := ownedFileMode(pod, defaultMode)
	payload := map[string]fileProjection{}
	if p.CredentialBundlePath != "" {
		bundle := make([]byte, 0, len(key)+len(chain))
		bundle = append(append(bundle, key...), chain...)
		payload[p.CredentialBundlePath] = fileProjection{Data: bundle, Mode: mode}
	}
	if p.KeyPath != "" {
		payload[p.KeyPath] = fileProjection{Data: key, Mode: mode}
	}
	if p.CertificateChainPath != "" {
		payload[p.CertificateChainPath] = fileProjection{Data: chain, Mode: mode}
	}
	return payload, nil
}

func (m *Manager) forgetPodCertificates(uid types.UID) {
	if m.podCerts != nil {
		m.podCerts.ForgetPod(uid)
	}
}
