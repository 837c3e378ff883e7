// Package etcdtest starts real multi-member etcd clusters inside a test
// process, for tests of skiff against an external etcd (--etcd-servers).
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// readyTimeout bounds the wait for all members to join and elect a leader.
const readyTimeout = 60 * time.Second

// StartTestCluster starts an etcd cluster of members members (plain HTTP on
// loopback ports, each in its own temporary directory) and waits until
// every member is ready. It returns the members' client URLs, in member
// order, and stop, which stops member i (0-based) and waits for it to exit;
// stop is idempotent. Every member still running is stopped when the test
// ends.
func StartTestCluster(t testing.TB, members int) (endpoints []string, stop func(i int)) {
	t.Helper()
	if members < 1 {
		t.Fatalf("etcdtest: %d members", members)
	}
	ports, err := freePorts(2 * members)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	cfgs := make([]*embed.Config, members)
	var initial []string
	for i := range members {
		name := "m" + strconv.Itoa(i)
		clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i]))}
		peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i+1]))}
		c := embed.NewConfig()
		c.Name = name
		c.Dir = t.TempDir()
		c.ListenClientUrls = []url.URL{clientURL}
		c.AdvertiseClientUrls = []url.URL{clientURL}
		c.ListenPeerUrls = []url.URL{peerURL}
		c.AdvertisePeerUrls = []url.URL{peerURL}
		c.InitialClusterToken = fmt.Sprintf("etcdtest-%d", ports[0])
		c.EnableGRPCGateway = false
		c.LogLevel = "error"
		c.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfgs[i] = c
		initial = append(initial, name+"="+peerURL.String())
		endpoints = append(endpoints, clientURL.String())
	}
	for _, c := range cfgs {
		c.InitialCluster = strings.Join(initial, ",")
	}

	etcds := make([]*embed.Etcd, members)
	errs := make([]error, members)
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() { etcds[i], errs[i] = embed.StartEtcd(c) })
	}
	wg.Wait()

	var mu sync.Mutex
	stopped := make([]bool, members)
	stop = func(i int) {
		mu.Lock()
		defer mu.Unlock()
		if i < 0 || i >= members || stopped[i] || etcds[i] == nil {
			return
		}
		stopped[i] = true
		etcds[i].Close()
	}
	t.Cleanup(func() {
		for i := range members {
			stop(i)
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("etcdtest: start member %d: %v", i, err)
		}
	}

	deadline := time.After(readyTimeout)
	for i, e := range etcds {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			t.Fatalf("etcdtest: member %d: %v", i, err)
		case <-deadline:
			t.Fatalf("etcdtest: member %d not ready after %v", i, readyTimeout)
		}
	}
	return endpoints, stop
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
