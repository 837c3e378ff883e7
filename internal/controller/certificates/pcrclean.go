package certificates

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// PodCertificateRequestCleanerName is the --controllers name of the
// PodCertificateRequest cleaner, upstream's.
const PodCertificateRequestCleanerName = "podcertificaterequest-cleaner-controller"

// podCertificateRequestLifetime is how long a PodCertificateRequest is
// kept after its creation, issued or not, as upstream: every kubelet and
// signer is done with a request well before (a kubelet that has not seen
// its pending request for ten minutes makes a new one).
const podCertificateRequestLifetime = 15 * time.Minute

// PodCertificateRequestCleaner deletes PodCertificateRequests
// podCertificateRequestLifetime after their creation. Unlike upstream's,
// which lists every request each five minutes, it requeues each request
// for the moment it falls due.
type PodCertificateRequestCleaner struct {
	log *slog.Logger

	synced cache.InformerSynced
	queue  *reconcile.Queue
	expiry *reconcile.Expiry[*certv1.PodCertificateRequest]
}

// NewPodCertificateRequestCleaner builds the cleaner and registers its
// handler on factory. opts' Clock tells the time (default the real one).
func NewPodCertificateRequestCleaner(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...CleanerOptions) (*PodCertificateRequestCleaner, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", PodCertificateRequestCleanerName)
	}
	var o CleanerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	c := &PodCertificateRequestCleaner{log: slog.Default().With("controller", PodCertificateRequestCleanerName)}
	inf := factory.Certificates().V1().PodCertificateRequests()
	requests := inf.Lister()
	c.expiry = &reconcile.Expiry[*certv1.PodCertificateRequest]{
		What: "pod certificate request", Log: c.log, Clock: o.Clock,
		Get: func(key string) (*certv1.PodCertificateRequest, error) {
			ns, name, err := cache.SplitMetaNamespaceKey(key)
			if err != nil {
				return nil, apierrors.NewNotFound(certv1.Resource("podcertificaterequests"), key)
			}
			return requests.PodCertificateRequests(ns).Get(name)
		},
		DueAt: func(r *certv1.PodCertificateRequest) (time.Time, bool) {
			return r.CreationTimestamp.Add(podCertificateRequestLifetime), true
		},
		Delete: func(ctx context.Context, r *certv1.PodCertificateRequest, pre *metav1.Preconditions) error {
			return client.CertificatesV1().PodCertificateRequests(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: pre})
		},
	}
	c.queue = reconcile.New(PodCertificateRequestCleanerName, c.expiry.Sync)
	c.expiry.Queue = c.queue
	c.synced = inf.Informer().HasSynced
	if _, err := inf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: handler: %w", PodCertificateRequestCleanerName, err)
	}
	return c, nil
}

// Start waits for the cache to sync, cleans until ctx ends, and returns
// after its worker has exited.
func (c *PodCertificateRequestCleaner) Start(ctx context.Context) error {
	c.log.Info("starting")
	return c.queue.Run(ctx, 1, c.synced)
}
