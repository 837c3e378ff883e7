package server

import (
	"context"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/leader"
	"github.com/skiff-io/skiff/internal/scheduler"
)

// startScheduler runs the scheduler inside `skiff server` while this
// process holds the kube-system/kube-scheduler Lease (upstream's name,
// which the scheduler's bootstrap role may update). Its client has no
// client-side rate limit: it is the server's own component on loopback,
// and binding throughput is the point. Each term's scheduler records into
// metrics.
func startScheduler(ctx context.Context, wg *sync.WaitGroup, loopback *rest.Config, metrics *scheduler.Metrics, identity string, timing leader.Timing, bootstrapped <-chan struct{}) error {
	client, err := SchedulerClient(loopback)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-bootstrapped:
		case <-ctx.Done():
			return
		}
		err := leader.Run(ctx, client, "kube-scheduler", identity, timing, func(ctx context.Context) {
			if err := RunScheduler(ctx, client, scheduler.Config{Metrics: metrics}); err != nil && ctx.Err() == nil {
				slog.Default().Error("scheduler stopped", "err", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			slog.Default().Error("scheduler leader election", "err", err)
		}
	}()
	return nil
}

// SchedulerClient is the scheduler's client on the server's loopback
// configuration: protobuf, and no client-side rate limit.
func SchedulerClient(loopback *rest.Config) (kubernetes.Interface, error) {
	rc := rest.CopyConfig(loopback)
	rc.QPS, rc.Burst = -1, 0
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.UserAgent = "skiff-scheduler"
	return kubernetes.NewForConfig(rc)
}

// RunScheduler runs one scheduler with its own informers and event
// recorder until ctx ends (`skiff bench scheduler` runs it directly, with
// cfg.OnBound to time bindings).
func RunScheduler(ctx context.Context, client kubernetes.Interface, cfg scheduler.Config) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: scheduler.DefaultSchedulerName})
	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := scheduler.New(client, factory, recorder, cfg)
	if err != nil {
		return err
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	return s.Start(ctx)
}
