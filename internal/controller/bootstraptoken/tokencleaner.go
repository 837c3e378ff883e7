// Package bootstraptoken holds upstream's token cleaner (tokencleaner):
// it deletes a bootstrap token Secret (type bootstrap.kubernetes.io/token
// in kube-system) once the time in its "expiration" key has passed, so
// that an expired token is gone rather than merely refused. A token not
// yet due is requeued for the moment it expires. As upstream, a token
// without an expiration is kept and one whose expiration does not parse
// as RFC 3339 is deleted as expired.
//
// Upstream leaves tokencleaner off unless --controllers names it (kubeadm
// does); skiff runs it with "*", since `skiff token` hands out bootstrap
// tokens with expirations.
package bootstraptoken

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	tokens "github.com/skiff-io/skiff/internal/bootstraptoken"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's --controllers name, upstream's.
const Name = "tokencleaner"

// Options tune the controller.
type Options struct {
	// Clock tells the time (default the real clock); tests inject a fake.
	Clock clock.PassiveClock
}

// Cleaner is the token cleaner.
type Cleaner struct {
	log *slog.Logger

	synced cache.InformerSynced
	queue  *reconcile.Queue
	expiry *reconcile.Expiry[*corev1.Secret]
}

// isToken reports whether obj is a bootstrap token Secret.
func isToken(obj any) bool {
	s, ok := obj.(*corev1.Secret)
	return ok && s.Type == corev1.SecretTypeBootstrapToken && s.Namespace == tokens.Namespace
}

// New builds the token cleaner and registers its Secret handler on
// factory; only bootstrap token Secrets are queued.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Options) (*Cleaner, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	c := &Cleaner{log: slog.Default().With("controller", Name)}
	inf := factory.Core().V1().Secrets()
	secrets := inf.Lister()
	c.expiry = &reconcile.Expiry[*corev1.Secret]{
		What: "bootstrap token", Log: c.log, Clock: o.Clock,
		Get: func(key string) (*corev1.Secret, error) {
			ns, name, err := cache.SplitMetaNamespaceKey(key)
			if err != nil {
				return nil, apierrors.NewNotFound(corev1.Resource("secrets"), key)
			}
			return secrets.Secrets(ns).Get(name)
		},
		DueAt: expiry,
		Delete: func(ctx context.Context, s *corev1.Secret, pre *metav1.Preconditions) error {
			return client.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: pre})
		},
	}
	c.queue = reconcile.New(Name, c.expiry.Sync)
	c.expiry.Queue = c.queue
	c.synced = inf.Informer().HasSynced
	if _, err := inf.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: isToken,
		Handler:    c.queue.Handler(),
	}); err != nil {
		return nil, fmt.Errorf("%s: secret handler: %w", Name, err)
	}
	return c, nil
}

// Start waits for the Secret cache to sync, cleans until ctx ends, and
// returns after its worker has exited.
func (c *Cleaner) Start(ctx context.Context) error {
	c.log.Info("starting")
	return c.queue.Run(ctx, 1, c.synced)
}

// expiry is when the token Secret s expires: ok is false when it has no
// expiration or is not a token. An expiration that does not parse is
// taken as expired (the zero time), as upstream.
func expiry(s *corev1.Secret) (at time.Time, ok bool) {
	if !isToken(s) {
		return time.Time{}, false
	}
	v, found := s.Data[tokens.KeyExpiration]
	if !found || len(v) == 0 {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, string(v))
	if err != nil {
		return time.Time{}, true
	}
	return at, true
}
