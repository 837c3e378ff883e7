package certificates

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// CleanerName is csrcleaner's --controllers name, upstream's.
const CleanerName = "csrcleaner"

// How long a CSR is kept, as upstream's csrcleaner.
const (
	// issuedExpiration: after the Approved condition of an issued CSR.
	issuedExpiration = time.Hour
	// deniedExpiration: after its Denied or Failed condition.
	deniedExpiration = time.Hour
	// pendingExpiration: after its creation, while it has no condition.
	pendingExpiration = 24 * time.Hour
)

// CleanerOptions configure csrcleaner.
type CleanerOptions struct {
	// Clock tells the time (default the real clock).
	Clock clock.PassiveClock
}

// Cleaner is csrcleaner.
type Cleaner struct {
	log *slog.Logger

	synced cache.InformerSynced
	queue  *reconcile.Queue
	expiry *reconcile.Expiry[*certv1.CertificateSigningRequest]
}

// NewCleaner builds csrcleaner and registers its CSR handler on factory.
func NewCleaner(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...CleanerOptions) (*Cleaner, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", CleanerName)
	}
	var o CleanerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	c := &Cleaner{log: slog.Default().With("controller", CleanerName)}
	inf := factory.Certificates().V1().CertificateSigningRequests()
	csrs := inf.Lister()
	c.expiry = &reconcile.Expiry[*certv1.CertificateSigningRequest]{
		What: "certificate signing request", Log: c.log, Clock: o.Clock,
		Get:   csrs.Get,
		DueAt: cleanAt,
		Delete: func(ctx context.Context, csr *certv1.CertificateSigningRequest, pre *metav1.Preconditions) error {
			return client.CertificatesV1().CertificateSigningRequests().Delete(ctx, csr.Name, metav1.DeleteOptions{Preconditions: pre})
		},
	}
	c.queue = reconcile.New(CleanerName, c.expiry.Sync)
	c.expiry.Queue = c.queue
	c.synced = inf.Informer().HasSynced
	if _, err := inf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: csr handler: %w", CleanerName, err)
	}
	return c, nil
}

// Start waits for the CSR cache to sync, cleans until ctx ends, and
// returns after its worker has exited.
func (c *Cleaner) Start(ctx context.Context) error {
	c.log.Info("starting")
	return c.queue.Run(ctx, 1, c.synced)
}

// cleanAt is when csr may be deleted, the earliest that any of upstream's
// rules allows: an hour after the Approved condition of an issued CSR; an
// hour after a Denied or a Failed condition; a day after its creation
// while it has no condition; when its certificate expires. A condition
// without lastUpdateTime does not count, as upstream. ok is false when no
// rule applies (an approved CSR that is never issued stays).
func cleanAt(csr *certv1.CertificateSigningRequest) (at time.Time, ok bool) {
	consider := func(since metav1.Time, after time.Duration) {
		if t := since.Add(after); !since.IsZero() && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	issued := len(csr.Status.Certificate) > 0
	approvedSeen := false
	for _, cond := range csr.Status.Conditions {
		switch cond.Type {
		case certv1.CertificateApproved:
			approvedSeen = true
			if issued {
				consider(cond.LastUpdateTime, issuedExpiration)
			}
		case certv1.CertificateDenied, certv1.CertificateFailed:
			consider(cond.LastUpdateTime, deniedExpiration)
		}
	}
	if len(csr.Status.Conditions) == 0 {
		consider(csr.CreationTimestamp, pendingExpiration)
	}
	if issued && approvedSeen {
		if notAfter, err := certificateNotAfter(csr.Status.Certificate); err == nil {
			consider(metav1.NewTime(notAfter), 0)
		}
	}
	return at, ok
}

// certificateNotAfter is the expiry of the first certificate in data.
func certificateNotAfter(data []byte) (time.Time, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return time.Time{}, errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return time.Time{}, err
	}
	return cert.NotAfter, nil
}
