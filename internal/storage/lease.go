package storage

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxLeaseReuse bounds how long one lease is handed out for objects of the
// same ttl.
const maxLeaseReuse = time.Minute

// leaseManager hands out etcd leases for objects with a ttl. Granting a
// lease per object would make etcd track one lease per event; instead
// objects created within a short window share one lease, granted for
// ttl+window, so each lives between ttl and ttl+window seconds (upstream
// does the same). The window is 5% of the ttl, at most a minute.
type leaseManager struct {
	client *clientv3.Client
	mu     sync.Mutex
	leases map[int64]grantedLease // by requested ttl
}

type grantedLease struct {
	id clientv3.LeaseID
	// reuseUntil is the end of the window in which the lease is handed
	// out again for the same ttl.
	reuseUntil time.Time
}

func newLeaseManager(client *clientv3.Client) *leaseManager {
	return &leaseManager{client: client, leases: map[int64]grantedLease{}}
}

// reuseWindow is the window for ttl seconds.
func reuseWindow(ttl int64) time.Duration {
	w := time.Duration(ttl) * time.Second / 20
	return min(w, maxLeaseReuse)
}

// lease returns a lease that keeps an object alive for at least ttl
// seconds.
func (l *leaseManager) lease(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if g, ok := l.leases[ttl]; ok && now.Before(g.reuseUntil) {
		return g.id, nil
	}
	window := reuseWindow(ttl)
	// etcd leases are whole seconds: round the window up.
	grantTTL := ttl + int64((window+time.Second-1)/time.Second)
	resp, err := l.client.Grant(ctx, grantTTL)
	if err != nil {
		return 0, fmt.Errorf("grant lease of %ds: %w", grantTTL, err)
	}
	l.leases[ttl] = grantedLease{id: resp.ID, reuseUntil: now.Add(window)}
	return resp.ID, nil
}
