package certificates

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
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
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.PassiveClock

	requests certlisters.PodCertificateRequestLister
	synced   cache.InformerSynced
	queue    *reconcile.Queue
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
	c := &PodCertificateRequestCleaner{client: client, log: slog.Default().With("controller", PodCertificateRequestCleanerName), clock: o.Clock}
	c.queue = reconcile.New(PodCertificateRequestCleanerName, c.sync)
	inf := factory.Certificates().V1().PodCertificateRequests()
	c.requests = inf.Lister()
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

// sync deletes the request if it is due, or requeues it for when it is.
func (c *PodCertificateRequestCleaner) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	r, err := c.requests.PodCertificateRequests(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("podcertificaterequest %s: %w", key, err)
	}
	if r.DeletionTimestamp != nil {
		return nil
	}
	if left := r.CreationTimestamp.Add(podCertificateRequestLifetime).Sub(c.clock.Now()); left > 0 {
		c.queue.AddAfter(key, left)
		return nil
	}
	uid := r.UID
	err = c.client.CertificatesV1().PodCertificateRequests(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("podcertificaterequest %s: delete: %w", key, err)
	}
	c.log.Info("deleted pod certificate request", "request", key)
	return nil
}
