package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/etcd/etcdtest"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// serviceClaimsPrefix is where internal/server keeps the service
// allocation claims.
const serviceClaimsPrefix = "/registry/skiff.io/serviceallocations/"

// Two API servers on one etcd cluster create 1,000 Services at once, half
// of them NodePort: no cluster IP and no node port is given twice,
// each is claimed once in etcd, and deleting the Services releases them.
// Two Services asking both servers for one node port at the same instant:
// one gets it, the other is told it is allocated.
func TestServiceAllocationAcrossServers(t *testing.T) {
	endpoints, _ := etcdtest.StartTestCluster(t, 1)
	// Ranges a few times the services, so that two servers picking at
	// random collide often without claims: /20 (4,094 addresses) and
	// 1,024 node ports.
	ranges := func(c *server.Config) { c.ServiceCIDR, c.NodePortRange = "10.43.0.0/20", "30000-31023" }
	servers := []*framework.Cluster{
		framework.StartInProcess(t, framework.WithEtcd(endpoints), framework.WithControllers(), ranges),
		framework.StartInProcess(t, framework.WithEtcd(endpoints), framework.WithControllers(), ranges),
	}
	ctx := ctxT(t)
	mustNamespace(t, servers[0].Client, "alloc")
	framework.Eventually(t, 10*time.Second, func() bool {
		_, err := servers[1].Client.CoreV1().Namespaces().Get(ctx, "alloc", metav1.GetOptions{})
		return err == nil
	})

	const services, workers = 1000, 32
	start := make(chan struct{})
	var next atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		cs := servers[w%2].Client
		wg.Go(func() {
			<-start // all at the same instant
			for {
				i := int(next.Add(1)) - 1
				if i >= services {
					return
				}
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%04d", i)},
					Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
				}
				if i%2 == 0 {
					svc.Spec.Type = corev1.ServiceTypeNodePort
				}
				if _, err := cs.CoreV1().Services("alloc").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					t.Errorf("service %d: %v", i, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	list, err := servers[0].Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder := map[string]string{} // "clusterips/10.43.0.7" or "nodeports/30001" -> namespace/name
	var dups []string
	for _, s := range list.Items {
		for _, n := range serviceHoldings(&s) {
			if other, dup := holder[n]; dup {
				dups = append(dups, fmt.Sprintf("%s: %s and %s/%s", n, other, s.Namespace, s.Name))
			}
			holder[n] = s.Namespace + "/" + s.Name
		}
	}
	if len(dups) > 0 {
		t.Fatalf("%d addresses or ports given twice among %d services:\n%s", len(dups), len(list.Items), strings.Join(dups, "\n"))
	}

	etcd := etcdClient(t, endpoints)
	claims := func() map[string]string {
		t.Helper()
		resp, err := etcd.Get(ctx, serviceClaimsPrefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[strings.TrimPrefix(string(kv.Key), serviceClaimsPrefix)] = string(kv.Value)
		}
		return got
	}
	got := claims()
	for n, owner := range holder {
		if !strings.Contains(got[n], `"`+owner+`"`) {
			t.Errorf("%s, held by %s, is claimed as %q", n, owner, got[n])
		}
	}
	if len(got) != len(holder) {
		t.Errorf("%d claims for %d addresses and ports", len(got), len(holder))
	}

	// One free node port asked of both servers at once, 20 times over.
	const pairs = 20
	var free []int32
	for p := int32(30000); len(free) < pairs; p++ {
		if _, held := holder[fmt.Sprintf("nodeports/%d", p)]; !held {
			free = append(free, p)
		}
	}
	var won, lost atomic.Int32
	start = make(chan struct{})
	for p := range pairs {
		for side := range 2 {
			cs := servers[side].Client
			wg.Go(func() {
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pair%02d-%d", p, side)},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{
						{Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: free[p]}}},
				}
				<-start
				_, err := cs.CoreV1().Services("alloc").Create(ctx, svc, metav1.CreateOptions{})
				switch {
				case err == nil:
					won.Add(1)
				case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "provided port is already allocated"):
					lost.Add(1)
				default:
					t.Errorf("pair %d, server %d: %v", p, side, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if won.Load() != pairs || lost.Load() != pairs {
		t.Fatalf("%d creates got the port asked for and %d were refused, want %d and %d", won.Load(), lost.Load(), pairs, pairs)
	}

	// Deleted from either server, the Services' claims go with them.
	if err := deleteAllServices(ctx, servers, "alloc"); err != nil {
		t.Fatal(err)
	}
	for n, v := range claims() {
		if strings.Contains(v, `"alloc/`) {
			t.Errorf("%s still claimed after its service was deleted: %s", n, v)
		}
	}
}

// serviceHoldings names the cluster IPs and node ports s holds, as the
// claims do.
func serviceHoldings(s *corev1.Service) []string {
	var names []string
	if ip := s.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		names = append(names, "clusterips/"+ip)
	}
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			names = append(names, fmt.Sprintf("nodeports/%d", p.NodePort))
		}
	}
	return names
}

func etcdClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteAllServices deletes every Service of namespace, through the
// servers in turn.
func deleteAllServices(ctx context.Context, servers []*framework.Cluster, namespace string) error {
	list, err := servers[0].Client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan string)
	for w := range 16 {
		var cs kubernetes.Interface = servers[w%len(servers)].Client
		wg.Go(func() {
			for name := range work {
				err := cs.CoreV1().Services(namespace).Delete(ctx, name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, s := range list.Items {
		work <- s.Name
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}
