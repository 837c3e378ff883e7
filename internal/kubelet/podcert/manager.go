package podcert

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	certinformersv1 "k8s.io/client-go/informers/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const (
	// assumeDeletedAfter is how long a created request may stay out of
	// the informer before it is taken for deleted and made again.
	assumeDeletedAfter = 10 * time.Minute
	// maxRefreshJitter spreads the refreshes of many pods (upstream's).
	maxRefreshJitter = 5 * time.Minute
	// retryInitial and retryMax bound the back-off after a denied or
	// failed request.
	retryInitial = time.Minute
	retryMax     = time.Hour
)

// ErrNotIssued is returned while a source's first certificate is pending.
var ErrNotIssued = errors.New("credential bundle is not issued yet")

// Manager issues and refreshes the credentials of the podCertificate
// sources of one node's pods. Create it with New, run it with Start. Its
// methods are safe for concurrent use; calls for one pod are expected to
// be serialised by that pod's worker.
type Manager struct {
	client kubernetes.Interface
	node   string
	log    *slog.Logger
	// now and jitter are the clock and the refresh jitter; tests replace
	// them.
	now    func() time.Time
	jitter func() time.Duration
	// requests is the informer of the node's PodCertificateRequests.
	requests cache.SharedIndexInformer

	mu      sync.Mutex
	sources map[sourceKey]*source
	notify  func(types.UID)
}

// sourceKey names one podCertificate source of one pod.
type sourceKey struct {
	pod    types.UID
	volume string
	index  int
}

// source is what the Manager knows of one podCertificate source. Its mu
// is held across the API calls of one CredentialBundle call.
type source struct {
	mu sync.Mutex
	// The credentials served now: a PEM private key and the issued chain,
	// with the certificate's notAfter and when to ask for the next one.
	key, chain          []byte
	notAfter, refreshAt time.Time
	// A request in flight: its name, the key it is for, and when it is
	// taken for deleted if the informer has not shown it.
	pending    string
	pendingKey []byte
	abandonAt  time.Time
	// The last failure (a denied, failed or vanished request), when the
	// next request may be made, and how many failures in a row led there.
	lastErr  error
	retryAt  time.Time
	failures int
}

// New returns a Manager that makes requests as node through client.
// log may be nil.
func New(client kubernetes.Interface, node string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	inf := certinformersv1.NewFilteredPodCertificateRequestInformer(client, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		})
	_ = inf.SetTransform(func(o any) (any, error) {
		if r, ok := o.(*certificatesv1.PodCertificateRequest); ok {
			r.ManagedFields = nil
		}
		return o, nil
	})
	m := &Manager{
		client:   client,
		node:     node,
		log:      log,
		now:      time.Now,
		jitter:   func() time.Duration { return rand.N(maxRefreshJitter) },
		requests: inf,
		sources:  map[sourceKey]*source{},
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    m.changed,
		UpdateFunc: func(_, obj any) { m.changed(obj) },
	})
	return m
}

// SetNotify sets the function the Manager calls with a pod's UID when a
// request of that pod changes (the kubelet queues a sync of the pod).
// Call it before Start.
func (m *Manager) SetNotify(f func(types.UID)) { m.notify = f }

// Start runs the informer of the node's requests until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	m.requests.RunWithContext(ctx)
	return nil
}

// changed wakes the pod of a request the Manager waits for.
func (m *Manager) changed(obj any) {
	r, ok := obj.(*certificatesv1.PodCertificateRequest)
	if !ok || m.notify == nil {
		return
	}
	m.mu.Lock()
	tracked := false
	for k := range m.sources {
		if k.pod == r.Spec.PodUID {
			tracked = true
			break
		}
	}
	m.mu.Unlock()
	if tracked {
		m.notify(r.Spec.PodUID)
	}
}

// ForgetPod drops what the Manager holds for the pod: its keys and
// certificates, and its pending requests (which the garbage collector
// deletes with the pod, their owner).
func (m *Manager) ForgetPod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.sources {
		if k.pod == uid {
			delete(m.sources, k)
		}
	}
}

// CredentialBundle returns the PEM private key and the PEM certificate
// chain (leaf first, headers and text between blocks dropped) of the
// index-th source, p, of pod's projected volume named volume. It creates
// a request when the source has none yet, when its certificate is due for
// refresh, or when a failure's back-off has passed, and never waits for
// the signer: until the first certificate is issued it returns
// ErrNotIssued, or the error of a denied or failed request. Once a
// certificate is issued it is returned until a newer one replaces it,
// whatever happens to the refresh.
func (m *Manager) CredentialBundle(ctx context.Context, pod *corev1.Pod, volume string, index int, p *corev1.PodCertificateProjection) (key, chain []byte, err error) {
	k := sourceKey{pod: pod.UID, volume: volume, index: index}
	m.mu.Lock()
	s := m.sources[k]
	if s == nil {
		s = &source{}
		m.sources[k] = s
	}
	m.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now()
	if s.pending != "" {
		m.checkPending(pod, s, now)
	}
	due := s.chain == nil || !now.Before(s.refreshAt)
	if s.pending == "" && due && !now.Before(s.retryAt) {
		// A request the API server refused made nothing: the pod
		// worker's own back-off paces the next try of a first
		// certificate; a refresh, which the pod does not wait for, is
		// tried again a minute later rather than on every sync.
		if err := m.request(ctx, pod, s, p, now); err != nil {
			if s.chain == nil {
				return nil, nil, err
			}
			s.retryAt = now.Add(retryInitial)
			m.log.Warn("pod certificate refresh failed; keeping the current certificate",
				"pod", pod.Namespace+"/"+pod.Name, "volume", volume, "source", index, "err", err)
		}
	}
	if s.chain != nil {
		return s.key, s.chain, nil
	}
	if s.lastErr != nil && s.pending == "" {
		return nil, nil, s.lastErr
	}
	return nil, nil, ErrNotIssued
}

// checkPending moves the source on when its pending request has been
// issued, denied or failed, or has gone missing for too long.
func (m *Manager) checkPending(pod *corev1.Pod, s *source, now time.Time) {
	name := pod.Namespace + "/" + s.pending
	obj, found, _ := m.requests.GetStore().GetByKey(name)
	r, _ := obj.(*certificatesv1.PodCertificateRequest)
	if !found || r == nil {
		if now.After(s.abandonAt) {
			m.failed(s, fmt.Errorf("PodCertificateRequest %s appears to have been deleted", name), time.Time{})
		}
		return
	}
	for _, c := range r.Status.Conditions {
		if c.Status != metav1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeDenied:
			m.failed(s, fmt.Errorf("PodCertificateRequest %s was denied: reason=%q message=%q", name, c.Reason, c.Message), now)
			return
		case certificatesv1.PodCertificateRequestConditionTypeFailed:
			m.failed(s, fmt.Errorf("PodCertificateRequest %s failed: reason=%q message=%q", name, c.Reason, c.Message), now)
			return
		case certificatesv1.PodCertificateRequestConditionTypeIssued:
			chain := cleanChain(r.Status.CertificateChain)
			if len(chain) == 0 || r.Status.BeginRefreshAt == nil || r.Status.NotAfter == nil {
				// The API server refuses such a status; never serve it.
				m.failed(s, fmt.Errorf("PodCertificateRequest %s is issued without a certificate chain and its times", name), now)
				return
			}
			s.key, s.chain = s.pendingKey, chain
			s.notAfter = r.Status.NotAfter.Time
			s.refreshAt = r.Status.BeginRefreshAt.Time.Add(m.jitter())
			if s.refreshAt.After(s.notAfter) {
				s.refreshAt = r.Status.BeginRefreshAt.Time
			}
			s.pending, s.pendingKey = "", nil
			s.lastErr, s.failures, s.retryAt = nil, 0, time.Time{}
			m.log.Debug("pod certificate issued", "pod", pod.Namespace+"/"+pod.Name, "request", name,
				"notAfter", s.notAfter, "refreshAt", s.refreshAt)
			return
		}
	}
}

// failed records err, drops the pending request, and backs off the next
// one from now (doubling from retryInitial to retryMax); a zero now lets
// the next request go at once.
func (m *Manager) failed(s *source, err error, now time.Time) {
	s.pending, s.pendingKey = "", nil
	s.lastErr = err
	if now.IsZero() {
		s.retryAt = time.Time{}
		return
	}
	delay := retryInitial << min(s.failures, 6)
	s.retryAt = now.Add(min(delay, retryMax))
	s.failures++
}

// cleanChain re-encodes the PEM blocks of chain as CERTIFICATE blocks
// without headers, dropping whatever lies between them, as upstream's
// kubelet writes a chain.
func cleanChain(chain string) []byte {
	var out bytes.Buffer
	rest := []byte(chain)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out.Bytes()
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
	}
}
