package framework

import (
	"context"
	"errors"
	"sync"
	"testing"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
)

// Starter is a controller: Start runs it until ctx ends and returns after
// its goroutines have exited.
type Starter interface {
	Start(ctx context.Context) error
}

// Build builds a controller over client and a fresh informer factory (it
// registers the informers it needs), reporting events to recorder.
type Build[R Starter] func(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (R, error)

// Builder adapts a controller package's constructor, New(client, factory,
// recorder, opts ...Options), to a Build that passes opts.
func Builder[R Starter, O any](newController func(kubernetes.Interface, informers.SharedInformerFactory, record.EventRecorder, ...O) (R, error), opts ...O) Build[R] {
	return func(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (R, error) {
		return newController(client, factory, recorder, opts...)
	}
}

// RecorderSize is the buffer of the FakeRecorder StartController returns;
// a controller blocks when it is full, so tests that record many events
// drain it.
const RecorderSize = 10000

// StartController starts an in-process cluster with none of the server's
// own controllers or scheduler, and runs the controller build returns over
// a fresh informer factory and a FakeRecorder until the test ends
// (t.Cleanup cancels it, waits for Start to return and shuts the factory
// down). It returns the cluster, a client (QPS 500, burst 1000) and the
// recorder.
func StartController[R Starter](t testing.TB, build Build[R]) (*Cluster, kubernetes.Interface, *record.FakeRecorder) {
	t.Helper()
	cluster := StartInProcess(t, WithControllers())
	client := cluster.NewClient(t)
	recorder := record.NewFakeRecorder(RecorderSize)
	RunController(t, client, recorder, build)
	return cluster, client, recorder
}

// NewClient returns a client of the cluster's admin with QPS 500 and
// burst 1000.
func (c *Cluster) NewClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return client
}

// RunController builds a controller over client, a fresh informer factory
// and recorder, starts the factory and runs the controller. The returned
// stop cancels it, waits for Start to return (a Start error fails the
// test) and shuts the factory down; it is idempotent and also runs in
// t.Cleanup, so a test calls it only to stop the controller early (e.g. to
// start a new one).
func RunController[R Starter](t testing.TB, client kubernetes.Interface, recorder record.EventRecorder, build Build[R]) (stop func()) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := build(client, factory, recorder)
	if err != nil {
		t.Fatalf("building the controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Start: %v", err)
			}
			factory.Shutdown()
		})
	}
	t.Cleanup(stop)
	return stop
}

// Group runs several controllers as one: Start runs each in its own
// goroutine until ctx ends, waits for all and returns their errors joined.
type Group []Starter

// Start implements Starter.
func (g Group) Start(ctx context.Context) error {
	errs := make(chan error, len(g))
	for _, s := range g {
		go func() { errs <- s.Start(ctx) }()
	}
	var all []error
	for range g {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}
