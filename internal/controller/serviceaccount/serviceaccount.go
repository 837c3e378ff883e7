// Package serviceaccount keeps what every active namespace is expected to
// hold: the ServiceAccount "default" (upstream's serviceaccount controller;
// token Secrets are not created, as upstream since 1.24) and the ConfigMap
// "kube-root-ca.crt" whose ca.crt is the cluster CA (upstream's
// root-ca-cert-publisher). Either is recreated when deleted, and the
// ConfigMap's data is restored when changed. Namespaces being deleted are
// left alone.
package serviceaccount

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "serviceaccount"

// Names of the objects kept in every namespace.
const (
	DefaultServiceAccount = "default"
	RootCAConfigMap       = "kube-root-ca.crt"
	rootCAKey             = "ca.crt"
	descriptionAnnotation = "kubernetes.io/description"
	rootCADescription     = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Options configure the controller.
type Options struct {
	// RootCA is the PEM bundle published as kube-root-ca.crt. Empty
	// publishes no ConfigMap. CurrentRootCA, when set, is asked instead,
	// per namespace synced: the bundle in force (a CA rotation changes
	// it), and a receive on RootCAChanged has every namespace synced
	// again.
	RootCA        []byte
	CurrentRootCA func() []byte
	RootCAChanged <-chan struct{}
	// Workers is the number of namespaces reconciled at once (default 2).
	Workers int
	// RootCAClient writes kube-root-ca.crt; nil uses the controller's
	// client. Upstream publishes it as a controller of its own
	// (root-ca-cert-publisher), with a role of its own.
	RootCAClient kubernetes.Interface
}

// Controller keeps the default ServiceAccount and root CA ConfigMap.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options

	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	queue      *reconcile.Queue
}

// New builds the controller and registers its Namespace, ServiceAccount
// and ConfigMap informers and handlers on factory. The caller starts the
// factory; Start waits for it to sync.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", name), opts: o}
	c.queue = reconcile.New(name, c.sync)

	nsInf := factory.Core().V1().Namespaces()
	c.namespaces = nsInf.Lister()
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.queue.Enqueue,
		UpdateFunc: func(_, obj any) { c.queue.Enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: namespace handler: %w", name, err)
	}
	saInf := factory.Core().V1().ServiceAccounts()
	c.accounts = saInf.Lister()
	if _, err := saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) { c.enqueueNamespaceOf(obj, DefaultServiceAccount) },
	}); err != nil {
		return nil, fmt.Errorf("%s: serviceaccount handler: %w", name, err)
	}
	cmInf := factory.Core().V1().ConfigMaps()
	c.configMaps = cmInf.Lister()
	if _, err := cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.enqueueNamespaceOf(obj, RootCAConfigMap) },
		DeleteFunc: func(obj any) { c.enqueueNamespaceOf(obj, RootCAConfigMap) },
	}); err != nil {
		return nil, fmt.Errorf("%s: configmap handler: %w", name, err)
	}
	c.synced = []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced, cmInf.Informer().HasSynced}
	return c, nil
}

// Start waits for the caches to sync, reconciles namespaces until ctx
// ends, and returns after its workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.opts.Workers)
	if c.opts.RootCAChanged != nil {
		go c.resyncOnRootCAChange(ctx)
	}
	return c.queue.Run(ctx, c.opts.Workers, c.synced...)
}

// resyncOnRootCAChange queues every namespace when the root CA changes.
func (c *Controller) resyncOnRootCAChange(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.opts.RootCAChanged:
		}
		nss, err := c.namespaces.List(labels.Everything())
		if err != nil {
			continue
		}
		c.log.Info("root CA changed: republishing", "configmap", RootCAConfigMap, "namespaces", len(nss))
		for _, ns := range nss {
			c.queue.Add(ns.Name)
		}
	}
}

// rootCA is the bundle to publish now.
func (c *Controller) rootCA() []byte {
	if c.opts.CurrentRootCA != nil {
		return c.opts.CurrentRootCA()
	}
	return c.opts.RootCA
}

// enqueueNamespaceOf queues the namespace of obj when obj is named want.
func (c *Controller) enqueueNamespaceOf(obj any, want string) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok || m.GetName() != want {
		return
	}
	c.queue.Add(m.GetNamespace())
}

// sync ensures the objects of namespace key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, err := c.namespaces.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	if err := c.ensureAccount(ctx, key); err != nil {
		return err
	}
	return c.ensureRootCA(ctx, key)
}

func (c *Controller) ensureAccount(ctx context.Context, ns string) error {
	if _, err := c.accounts.ServiceAccounts(ns).Get(DefaultServiceAccount); err == nil {
		return nil
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceAccount, Namespace: ns}}
	_, err := c.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Debug("created default serviceaccount", "namespace", ns)
		return nil
	case apierrors.IsAlreadyExists(err), terminating(err):
		return nil
	}
	return fmt.Errorf("creating serviceaccount %s/%s: %w", ns, DefaultServiceAccount, err)
}

func (c *Controller) ensureRootCA(ctx context.Context, ns string) error {
	ca := c.rootCA()
	if len(ca) == 0 {
		return nil
	}
	want := string(ca)
	client := c.client
	if c.opts.RootCAClient != nil {
		client = c.opts.RootCAClient
	}
	api := client.CoreV1().ConfigMaps(ns)
	cm, err := c.configMaps.ConfigMaps(ns).Get(RootCAConfigMap)
	if apierrors.IsNotFound(err) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap, Namespace: ns,
				Annotations: map[string]string{descriptionAnnotation: rootCADescription}},
			Data: map[string]string{rootCAKey: want},
		}
		_, err := api.Create(ctx, cm, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) || terminating(err) {
			return nil
		}
		return fmt.Errorf("creating configmap %s/%s: %w", ns, RootCAConfigMap, err)
	}
	if err != nil {
		return err
	}
	if rootCACurrent(cm, ca) {
		return nil
	}
	next := cm.DeepCopy()
	next.Data = map[string]string{rootCAKey: want}
	next.BinaryData = nil
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[descriptionAnnotation] = rootCADescription
	if _, err := api.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating configmap %s/%s: %w", ns, RootCAConfigMap, err)
	}
	return nil
}

// rootCACurrent reports whether cm holds exactly ca under ca.crt and
// nothing else, as the root CA publisher writes it.
func rootCACurrent(cm *corev1.ConfigMap, ca []byte) bool {
	return cm != nil && len(cm.Data) == 1 && len(cm.BinaryData) == 0 && bytes.Equal([]byte(cm.Data[rootCAKey]), ca)
}

func terminating(err error) bool {
	return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}
