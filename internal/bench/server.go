package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/server"
)

// startServer runs `skiff server` in this process on dir, with no node
// agent, no controllers, no scheduler and no metrics API (a bench starts
// what it measures), and returns its admin client configuration and the
// loopback configuration its scheduler uses (as system:kube-scheduler),
// once it serves. opts change the server's configuration further. stop
// shuts it down and waits for it.
func startServer(ctx context.Context, dir string, opts ...func(*server.Config)) (rc, loopback *rest.Config, stop func(), err error) {
	scfg := server.Defaults()
	scfg.DataDir = dir
	scfg.HTTPSPort = 0
	scfg.DisableAgent = true
	scfg.Controllers = nil
	scfg.DisableScheduler = true
	scfg.MetricResolution = 0 // no metrics API: nothing scrapes the nodes
	scfg.Ready = make(chan struct{})
	scfg.SchedulerLoopback = func(c *rest.Config) { loopback = c }
	for _, o := range opts {
		o(&scfg)
	}
	srvCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.Run(srvCtx, scfg) }()
	stop = func() { cancel(); <-done }
	select {
	case <-scfg.Ready:
	case err := <-done:
		cancel()
		return nil, nil, nil, fmt.Errorf("server: %w", err)
	}
	rc, err = clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	// Ready: the RBAC policy loaded among the rest, so that the bench's
	// components are not refused at first.
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error() == nil, nil
	})
	if err != nil {
		stop()
		return nil, nil, nil, fmt.Errorf("server not ready: %w", err)
	}
	return rc, loopback, stop, nil
}
