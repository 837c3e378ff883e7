// Package manager is skiff's controller-manager: it runs the controllers
// of internal/controller/<name> over one shared informer factory, while this
// process holds the kube-system/kube-controller-manager Lease. Each
// controller is a client of the API like any other (rule 1).
package manager

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/podautoscaler"
	"github.com/skiff-io/skiff/internal/leader"
)

// Config is the controller-manager's configuration.
type Config struct {
	// Client reaches the API server as the controller-manager itself: the
	// shared informers, leader election and events use it.
	Client *rest.Config
	// ClientFor, when set, is the configuration a controller acts with,
	// given the service account upstream's kube-controller-manager gives
	// it in kube-system (its --use-service-account-credentials); nil
	// means every controller uses Client.
	ClientFor func(account string) (*rest.Config, error)
	// Controllers names the controllers to run: "*" for all, "name" to
	// add one, "-name" to leave one out (kube-controller-manager's
	// --controllers). Empty runs none.
	Controllers []string
	// ClusterCIDR is the range node podCIDRs are cut from (/24 each).
	ClusterCIDR string
	// NodeMonitorGracePeriod is how long a node's Lease may go unrenewed
	// before the node is marked NotReady/Unknown (upstream: 40 s).
	NodeMonitorGracePeriod time.Duration
	// LBPool is the address range the built-in local cloud provider
	// gives Services of type LoadBalancer (default 127.0.100.0/24).
	LBPool string
	// RootCA is the cluster CA (PEM) published in every namespace as
	// kube-root-ca.crt; empty means the CA Client trusts, if it names one.
	// CurrentRootCA, when set, gives the bundle in force instead, and a
	// receive on RootCAChanged republishes it everywhere (a CA rotation).
	RootCA        []byte
	CurrentRootCA func() []byte
	RootCAChanged <-chan struct{}
	// SigningCA returns the cluster CA certificate and key the csrsigning
	// controller issues certificates with (upstream's
	// --cluster-signing-cert-file and -key-file). It is called per
	// certificate, so that a CA rotation takes effect at the next one;
	// nil leaves csrsigning idle, issuing nothing. SigningDuration is the
	// longest lifetime it gives (--cluster-signing-duration; zero: a
	// year).
	SigningCA       func() (*x509.Certificate, crypto.Signer, error)
	SigningDuration time.Duration
	// HPASyncPeriod is how often the HorizontalPodAutoscaler controller
	// looks at each HPA (--horizontal-pod-autoscaler-sync-period; upstream
	// and zero: 15s).
	HPASyncPeriod time.Duration
	// HPA tunes the HorizontalPodAutoscaler controller's decisions
	// (--horizontal-pod-autoscaler-tolerance, -cpu-initialization-period,
	// -initial-readiness-delay, -downscale-stabilization); each zero field
	// takes upstream's default (podautoscaler.DefaultConfig).
	HPA podautoscaler.Config
	// LeaderElect runs the controllers only while holding the Lease.
	LeaderElect bool
	// Identity names this process in the Lease (default
	// leader.Identity("")); LeaderElection is how the Lease is held (zero:
	// leader.DefaultTiming).
	Identity       string
	LeaderElection leader.Timing
}

// Context is what a controller is built from.
type Context struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// RESTConfig builds further clients (dynamic, metadata, discovery).
	RESTConfig *rest.Config
	Config     Config
	// Recorder returns an event recorder reporting as component.
	Recorder func(component string) record.EventRecorder
	// As returns a client acting as another controller's service account
	// (a controller that does the work of two upstream controllers acts
	// as each for its part).
	As func(account string) (kubernetes.Interface, error)
}

// Runnable is a built controller: Start blocks until ctx ends and returns
// after its workers have exited.
type Runnable interface {
	Start(ctx context.Context) error
}

// Constructor builds a controller. It registers the informers it needs on
// ctx.Informers before returning; the manager starts the factory after
// every controller is built.
type Constructor func(ctx Context) (Runnable, error)

// Names returns the names of the known controllers, sorted.
func Names() []string {
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Enabled reports which known controllers a --controllers list selects.
func Enabled(list []string) ([]string, error) {
	all := false
	on, off := map[string]bool{}, map[string]bool{}
	for _, item := range list {
		item = strings.TrimSpace(item)
		switch {
		case item == "*":
			all = true
		case strings.HasPrefix(item, "-"):
			off[item[1:]] = true
		case item != "":
			on[item] = true
		}
	}
	for n := range on {
		if _, ok := known[n]; !ok {
			return nil, fmt.Errorf("unknown controller %q (known: %s)", n, strings.Join(Names(), ", "))
		}
	}
	for n := range off {
		if _, ok := known[n]; !ok {
			return nil, fmt.Errorf("unknown controller %q (known: %s)", n, strings.Join(Names(), ", "))
		}
	}
	var out []string
	for _, n := range Names() {
		if (all || on[n]) && !off[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Run runs the enabled controllers until ctx ends, under leader election
// when cfg.LeaderElect is set. It returns after every controller has
// exited.
func Run(ctx context.Context, cfg Config) error {
	names, err := Enabled(cfg.Controllers)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	if cfg.NodeMonitorGracePeriod == 0 {
		cfg.NodeMonitorGracePeriod = 40 * time.Second
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = "10.42.0.0/16"
	}
	if cfg.HPASyncPeriod == 0 {
		cfg.HPASyncPeriod = 15 * time.Second
	}
	client, err := kubernetes.NewForConfig(cfg.Client)
	if err != nil {
		return err
	}
	run := func(ctx context.Context) {
		if err := runControllers(ctx, cfg, client, names); err != nil && ctx.Err() == nil {
			slog.Default().Error("controller-manager stopped", "err", err)
		}
	}
	if !cfg.LeaderElect {
		run(ctx)
		return nil
	}
	id := cfg.Identity
	if id == "" {
		id = leader.Identity("")
	}
	return leader.Run(ctx, client, "kube-controller-manager", id, cfg.LeaderElection, run)
}

func runControllers(ctx context.Context, cfg Config, client kubernetes.Interface, names []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	factory := informers.NewSharedInformerFactory(client, 0)
	as := func(account string) (*rest.Config, kubernetes.Interface, error) {
		if cfg.ClientFor == nil {
			return cfg.Client, client, nil
		}
		rc, err := cfg.ClientFor(account)
		if err != nil {
			return nil, nil, err
		}
		c, err := kubernetes.NewForConfig(rc)
		return rc, c, err
	}
	var runnables []Runnable
	for _, n := range names {
		rc, c, err := as(Account(n))
		if err != nil {
			return fmt.Errorf("controller %s: client: %w", n, err)
		}
		cc := Context{
			Client:     c,
			Informers:  factory,
			RESTConfig: rc,
			Config:     cfg,
			Recorder: func(component string) record.EventRecorder {
				return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
			},
			As: func(account string) (kubernetes.Interface, error) {
				_, c, err := as(account)
				return c, err
			},
		}
		r, err := known[n](cc)
		if err != nil {
			return fmt.Errorf("controller %s: %w", n, err)
		}
		runnables = append(runnables, r)
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()

	var wg sync.WaitGroup
	for i, r := range runnables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Start(ctx); err != nil && ctx.Err() == nil {
				slog.Default().Error("controller stopped", "controller", names[i], "err", err)
			}
		}()
	}
	slog.Default().Info("controllers started", "controllers", strings.Join(names, ","))
	wg.Wait()
	return nil
}
