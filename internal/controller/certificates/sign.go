package certificates

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// SignerName is csrsigning's --controllers name, upstream's.
const SignerName = "csrsigning"

// ReasonSignerValidationFailure is the reason of the Failed condition
// csrsigning gives a request its signer's checks refuse.
const ReasonSignerValidationFailure = "SignerValidationFailure"

// SignerOptions configure csrsigning.
type SignerOptions struct {
	// CA returns the certificate and key that sign now. It is called for
	// every certificate issued, so that after a CA rotation the next
	// certificate comes from the new CA. Required.
	CA func() (*x509.Certificate, crypto.Signer, error)
	// Duration is the longest lifetime of a certificate (upstream's
	// --cluster-signing-duration); a CSR's spec.expirationSeconds may ask
	// for less. Zero: DefaultSigningDuration, a year.
	Duration time.Duration
	// Workers is the number of CSRs signed at once (default 5).
	Workers int
	// Clock tells the time (default the real clock).
	Clock clock.PassiveClock
}

// Signer is csrsigning.
type Signer struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   SignerOptions

	csrs   certlisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	queue  *reconcile.Queue
}

// NewSigner builds csrsigning and registers its CSR handler on factory.
// Only CSRs of the signers it serves are queued.
func NewSigner(client kubernetes.Interface, factory informers.SharedInformerFactory, opts SignerOptions) (*Signer, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", SignerName)
	}
	if opts.CA == nil {
		return nil, fmt.Errorf("%s: no signing CA", SignerName)
	}
	if opts.Duration <= 0 {
		opts.Duration = DefaultSigningDuration
	}
	if opts.Workers <= 0 {
		opts.Workers = 5
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &Signer{client: client, log: slog.Default().With("controller", SignerName), opts: opts}
	s.queue = reconcile.New(SignerName, s.sync)
	inf := factory.Certificates().V1().CertificateSigningRequests()
	s.csrs = inf.Lister()
	s.synced = inf.Informer().HasSynced
	if _, err := inf.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			csr, ok := obj.(*certv1.CertificateSigningRequest)
			return ok && signerChecks[csr.Spec.SignerName] != nil
		},
		Handler: s.queue.Handler(),
	}); err != nil {
		return nil, fmt.Errorf("%s: csr handler: %w", SignerName, err)
	}
	return s, nil
}

// Start waits for the CSR cache to sync, signs until ctx ends, and
// returns after the workers have exited.
func (s *Signer) Start(ctx context.Context) error {
	s.log.Info("starting", "workers", s.opts.Workers, "duration", s.opts.Duration)
	return s.queue.Run(ctx, s.opts.Workers, s.synced)
}

// sync issues the certificate of an approved CSR of a signer it serves,
// or fails the CSR when the signer's checks refuse it. A CSR that is not
// approved, is denied or failed, or has its certificate is left alone.
func (s *Signer) sync(ctx context.Context, key string) error {
	csr, err := s.csrs.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csr %s: %w", key, err)
	}
	check := signerChecks[csr.Spec.SignerName]
	if check == nil || len(csr.Status.Certificate) > 0 || !approved(csr) || hasCondition(csr, certv1.CertificateFailed) {
		return nil
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return fmt.Errorf("csr %s: %w", key, err)
	}
	now := s.opts.Clock.Now()
	csr = csr.DeepCopy()
	if err := check(req, csr.Spec.Usages); err != nil {
		csr.Status.Conditions = append(csr.Status.Conditions,
			condition(certv1.CertificateFailed, ReasonSignerValidationFailure, err.Error(), now))
		if _, err := s.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("csr %s: add Failed condition: %w", key, err)
		}
		s.log.Info("refused certificate request", "csr", key, "signer", csr.Spec.SignerName, "reason", err.Error())
		return nil
	}
	caCert, caKey, err := s.opts.CA()
	if err != nil {
		return fmt.Errorf("csr %s: %w", key, err)
	}
	if caCert == nil || caKey == nil {
		return fmt.Errorf("csr %s: no signing CA", key)
	}
	cert, err := issue(req, csr.Spec.Usages, lifetime(s.opts.Duration, csr.Spec.ExpirationSeconds), caCert, caKey, now)
	if err != nil {
		return fmt.Errorf("csr %s: %w", key, err)
	}
	csr.Status.Certificate = cert
	if _, err := s.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("csr %s: write certificate: %w", key, err)
	}
	s.log.Info("issued certificate", "csr", key, "signer", csr.Spec.SignerName, "subject", req.Subject.String())
	return nil
}
