package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/storage"
)

// ErrClaimed: the address or port is claimed by another owner.
var ErrClaimed = errors.New("claimed by another owner")

// Claim names: one per cluster IP ("clusterips/10.43.0.7") and one per
// node port ("nodeports/30001").
const (
	claimClusterIPs = "clusterips/"
	claimNodePorts  = "nodeports/"
)

// claimTries bounds the compare-and-swap retries of one Claim or Release
// whose key keeps changing under it.
const claimTries = 4

// ServiceClaims records in etcd which Service holds each cluster IP and
// node port: one key per address or port, "<prefix>clusterips/10.43.0.7"
// and "<prefix>nodeports/30001", whose value names the owner
// ("namespace/name") and when it claimed it. A key is created with a
// compare-and-swap on its absence, so of several API servers handing out
// one address at the same instant exactly one gets it. Upstream keeps one
// bitmap object per range instead, rewritten on every allocation; a key
// per allocation makes claims of different addresses independent writes.
//
// Claims are made by admission before the Service is stored, so a claim
// may outlive a create that failed later: ServiceAllocator.Repair releases
// claims their owner does not hold after a grace period, and claims what
// stored Services hold without a claim.
type ServiceClaims struct {
	client *clientv3.Client
	prefix string
}

// NewServiceClaims returns the claims kept under prefix (ending in "/") in
// the etcd behind client.
func NewServiceClaims(client *clientv3.Client, prefix string) *ServiceClaims {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &ServiceClaims{client: client, prefix: prefix}
}

// A Claim is one stored claim, as List reads it.
type Claim struct {
	Name  string    // "clusterips/10.43.0.7" or "nodeports/30001"
	Owner string    // "namespace/name"; "" if the stored value is unreadable
	At    time.Time // when it was claimed, or last claimed again by its owner
	rev   int64     // the key's mod revision when read
}

// claimValue is a claim's stored value (JSON).
type claimValue struct {
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
}

// Claim records that owner holds name. It succeeds if name was free, and
// if owner already holds it (a retried create, or admission run again for
// one update): then the claim's time is renewed, so that a sweep does not
// take it for leaked. It fails with ErrClaimed if another owner holds name;
// it never takes a claim from another owner.
func (c *ServiceClaims) Claim(ctx context.Context, name, owner string) error {
	_, _, err := c.claim(ctx, name, owner, time.Now())
	return err
}

// claim is Claim at a given time. It returns the claim as stored, and
// whether it is new (rather than owner's, renewed).
func (c *ServiceClaims) claim(ctx context.Context, name, owner string, at time.Time) (cl Claim, created bool, err error) {
	key := c.prefix + name
	val, err := json.Marshal(claimValue{Owner: owner, At: at.UTC()})
	if err != nil {
		return Claim{}, false, err
	}
	for range claimTries {
		resp, err := c.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return Claim{}, false, fmt.Errorf("claiming %s: %w", name, err)
		}
		if resp.Succeeded {
			return Claim{Name: name, Owner: owner, At: at, rev: resp.Header.Revision}, true, nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // released in between
		}
		cur := decodeClaim(c.prefix, kvs[0])
		if cur.Owner != owner {
			return Claim{}, false, fmt.Errorf("%s is held by %q: %w", name, cur.Owner, ErrClaimed)
		}
		resp, err = c.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.rev)).
			Then(clientv3.OpPut(key, string(val))).
			Commit()
		if err != nil {
			return Claim{}, false, fmt.Errorf("claiming %s again: %w", name, err)
		}
		if resp.Succeeded {
			return Claim{Name: name, Owner: owner, At: at, rev: resp.Header.Revision}, false, nil
		}
	}
	return Claim{}, false, fmt.Errorf("claiming %s: its claim changed %d times while trying", name, claimTries)
}

// Release deletes owner's claim on name. A name that is free, or held by
// another owner, is left as it is: Release may be repeated, and never
// takes an address from another Service.
func (c *ServiceClaims) Release(ctx context.Context, name, owner string) error {
	key := c.prefix + name
	for range claimTries {
		resp, err := c.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("releasing %s: %w", name, err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		cur := decodeClaim(c.prefix, resp.Kvs[0])
		if cur.Owner != owner {
			return nil
		}
		ok, err := c.releaseIfUnchanged(ctx, cur)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("releasing %s: its claim changed %d times while trying", name, claimTries)
}

// releaseIfUnchanged deletes the claim cl (as read by List) if its key has
// not been written since: false if it has (claimed again, or released).
func (c *ServiceClaims) releaseIfUnchanged(ctx context.Context, cl Claim) (bool, error) {
	key := c.prefix + cl.Name
	resp, err := c.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", cl.rev)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("releasing %s: %w", cl.Name, err)
	}
	return resp.Succeeded, nil
}

// Holder returns the owner that holds name, or "" if it is free.
func (c *ServiceClaims) Holder(ctx context.Context, name string) (string, error) {
	resp, err := c.client.Get(ctx, c.prefix+name)
	if err != nil {
		return "", fmt.Errorf("reading the claim of %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return decodeClaim(c.prefix, resp.Kvs[0]).Owner, nil
}

// List returns every claim, sorted by name, as of one etcd revision.
func (c *ServiceClaims) List(ctx context.Context) ([]Claim, error) {
	resp, err := c.client.Get(ctx, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing service allocation claims: %w", err)
	}
	claims := make([]Claim, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		claims = append(claims, decodeClaim(c.prefix, kv))
	}
	return claims, nil
}

// decodeClaim reads a stored claim. An unreadable value gives owner "" and
// a zero time: held by nobody, and old, so that a sweep removes it.
func decodeClaim(prefix string, kv *mvccpb.KeyValue) Claim {
	cl := Claim{Name: strings.TrimPrefix(string(kv.Key), prefix), rev: kv.ModRevision}
	var v claimValue
	if json.Unmarshal(kv.Value, &v) == nil {
		cl.Owner, cl.At = v.Owner, v.At
	}
	return cl
}

// claimGrace is how old a claim must be before Repair takes it for leaked:
// admission claims an address a moment before its Service is stored.
const claimGrace = time.Minute

// Repair keeps the claims in step with the stored Services until ctx ends:
// at once, and then every interval, it claims what stored Services hold
// without a claim (Services stored before claims existed, or whose claim
// was released by a delete that did not happen after all), and releases
// claims that their owner does not hold and that are older than a minute
// (a create or update that failed after admission, a delete of a Service
// whose finalizers held it). A pass that fails is logged and the next one
// tries again. Several servers may run it at once: each of its writes is a
// compare-and-swap. It needs Claims.
func (a *ServiceAllocator) Repair(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := a.repair(ctx, claimGrace, log); err != nil && ctx.Err() == nil {
			log.Warn("service allocation repair failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// repair is one pass of Repair, taking claims older than grace for leaked.
func (a *ServiceAllocator) repair(ctx context.Context, grace time.Duration, log *slog.Logger) error {
	// Claims first, then the Services, read consistently (not from a
	// cache that may lag): every claim read was made before the
	// Services were read, so a claim older than grace whose Service is
	// not among them is not one for a Service about to be stored.
	claims, err := a.Claims.List(ctx)
	if err != nil {
		return err
	}
	list := &corev1.ServiceList{}
	if err := a.Services.List(ctx, a.Prefix, storage.ListOptions{}, list); err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	held := map[string]string{} // claim name -> the Service holding it
	var names []string
	for i := range list.Items {
		s := &list.Items[i]
		owner := s.Namespace + "/" + s.Name
		for _, n := range holdings(s) {
			if other, dup := held[n]; dup && other != owner {
				log.Warn("two services hold one address", "allocation", n, "service", owner, "other", other)
				continue
			}
			if _, dup := held[n]; !dup {
				names = append(names, n)
			}
			held[n] = owner
		}
	}
	claimed := map[string]bool{} // held and claimed by its holder
	now := time.Now()
	var errs []error
	for _, cl := range claims {
		if held[cl.Name] == cl.Owner {
			claimed[cl.Name] = true
			continue
		}
		if now.Sub(cl.At) < grace {
			continue
		}
		released, err := a.Claims.releaseIfUnchanged(ctx, cl)
		if err != nil {
			errs = append(errs, err)
		} else if released {
			log.Info("released a leaked service allocation", "allocation", cl.Name, "owner", cl.Owner, "claimed", cl.At)
		}
	}
	for _, n := range names {
		if claimed[n] {
			continue
		}
		_, _, err := a.Claims.claim(ctx, n, held[n], now)
		switch {
		case errors.Is(err, ErrClaimed):
			log.Warn("a service holds an address claimed by another", "allocation", n, "service", held[n], "err", err)
		case err != nil:
			errs = append(errs, err)
		default:
			log.Info("claimed a stored service's allocation", "allocation", n, "service", held[n])
		}
	}
	return errors.Join(errs...)
}
