package integration

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// TestProfiling: /debug/pprof/ is served, as upstream's --profiling does,
// to cluster-admin only; --profiling=false serves nothing there.
func TestProfiling(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	heap := func(cs kubernetes.Interface) ([]byte, error) {
		return cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/heap").Param("debug", "1").DoRaw(ctx)
	}
	body, err := heap(c.Client)
	if err != nil || !strings.Contains(string(body), "heap profile:") {
		t.Fatalf("admin GET /debug/pprof/heap: %v\n%.200s", err, body)
	}
	reader := kubernetes.NewForConfigOrDie(impersonated(c.Config, "system:serviceaccount:default:reader"))
	if _, err := heap(reader); !apierrors.IsForbidden(err) {
		t.Errorf("a service account GET /debug/pprof/heap: %v, want 403", err)
	}

	off := framework.StartInProcess(t, framework.WithControllers(), func(cfg *server.Config) { cfg.Profiling = false })
	if _, err := heap(off.Client); !apierrors.IsNotFound(err) {
		t.Errorf("--profiling=false: GET /debug/pprof/heap: %v, want 404", err)
	}
}
