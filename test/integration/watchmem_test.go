package integration

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	restwatch "k8s.io/client-go/rest/watch"

	"github.com/skiff-io/skiff/test/framework"
)

// TestWatchMemory opens 2,000 watches from resourceVersion 0 of a
// namespace that holds one 1 MiB ConfigMap, a quarter of them JSON (slow
// to decode) and the rest protobuf, and checks that once every watcher has received and decoded
// its initial ADDED event the heap has grown by less than 100 MB: the
// server encodes the event once per format and shares it, and no watch
// keeps a copy of it (issue 12). Client and server share the process, so
// the watchers read raw HTTP streams and let their buffers go after the
// first event, as a client in another process would not be counted.
func TestWatchMemory(t *testing.T) {
	const (
		watchers = 2000
		batch    = 50
		limit    = 100 << 20
		dataSize = 1<<20 - 1024 // the ConfigMap limit is 1 MiB of data
		ns       = "watchmem"
	)
	c := framework.StartInProcess(t)
	ctx := ctxT(t)
	mustNamespace(t, c.Client, ns)
	big := strings.Repeat("0123456789abcdef", dataSize/16)
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "big", Labels: map[string]string{"watchmem": "big"}},
		Data:       map[string]string{"big": big},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	big = ""

	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The selector leaves out the namespace's kube-root-ca.crt, which may
	// come first: resourceVersion 0 may be served from a cache that does
	// not have big yet.
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/configmaps?watch=true&resourceVersion=0&labelSelector=watchmem%%3Dbig&timeoutSeconds=600", c.Config.Host, ns)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })

	// The first watcher warms the client and server (connections, pools)
	// before the baseline.
	got := make(chan error, watchers)
	startWatch(wctx, &wg, hc, url, "application/json", dataSize, got)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	base := heapAfterGC()
	t.Logf("heap before the watchers: %d MB", base>>20)

	var grown int64
	for started := 1; started < watchers; {
		n := min(batch, watchers-started)
		for i := 0; i < n; i++ {
			accept := "application/vnd.kubernetes.protobuf"
			if (started+i)%4 == 0 {
				accept = "application/json"
			}
			startWatch(wctx, &wg, hc, url, accept, dataSize, got)
		}
		for i := 0; i < n; i++ {
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Minute):
				t.Fatalf("watcher %d got no initial event within a minute", started+i)
			}
		}
		started += n
		// Stop as soon as the bound is broken, before the rest pile on.
		if grown = int64(heapAfterGC()) - int64(base); grown > limit {
			t.Fatalf("%d watchers of a 1 MiB object added %d MB to the heap (%d KB each); want < %d MB for %d",
				started, grown>>20, grown/int64(started)>>10, limit>>20, watchers)
		}
	}
	t.Logf("%d watchers with their initial event: heap grew %d MB (%d KB per watcher)", watchers, grown>>20, grown/watchers>>10)
}

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // the second frees what sync.Pools held over the first
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// startWatch opens one watch, decodes its first event as client-go does,
// checks it is the ADDED of the big ConfigMap and reports on got, then
// holds the stream open, unread, until ctx ends.
func startWatch(ctx context.Context, wg *sync.WaitGroup, hc *http.Client, url, accept string, dataSize int, got chan<- error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			got <- err
			return
		}
		req.Header.Set("Accept", accept)
		resp, err := hc.Do(req)
		if err != nil {
			got <- fmt.Errorf("watch (%s): %w", accept, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			got <- fmt.Errorf("watch (%s): %s", accept, resp.Status)
			return
		}
		got <- decodeFirst(resp, accept, dataSize)
		<-ctx.Done()
	}()
}

// decodeFirst decodes the first event of a watch stream; its decoder and
// buffers are garbage when it returns.
func decodeFirst(resp *http.Response, accept string, dataSize int) error {
	var info apiruntime.SerializerInfo
	for _, i := range scheme.Codecs.SupportedMediaTypes() {
		if i.MediaType == accept {
			info = i
		}
	}
	if info.StreamSerializer == nil {
		return fmt.Errorf("no stream serializer for %s", accept)
	}
	frames := info.StreamSerializer.Framer.NewFrameReader(resp.Body)
	dec := restwatch.NewDecoder(streaming.NewDecoder(frames, info.StreamSerializer.Serializer), scheme.Codecs.UniversalDeserializer())
	typ, obj, err := dec.Decode()
	if err != nil {
		return fmt.Errorf("decoding the first event (%s): %w", accept, err)
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if typ != watch.Added || !ok || cm.Name != "big" || len(cm.Data["big"]) != dataSize/16*16 {
		return fmt.Errorf("first event (%s): %s %T, want ADDED of ConfigMap big with %d bytes", accept, typ, obj, dataSize/16*16)
	}
	return nil
}
