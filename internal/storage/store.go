package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

// Store is Interface straight on etcd: every call is one or more etcd
// requests. Writes are transactions that compare the key's create or mod
// revision, so concurrent writers never overwrite each other.
type Store struct {
	client *clientv3.Client
	cfg    Config
	codec  codec
	leases *leaseManager
}

var _ Interface = (*Store)(nil)

// NewStore returns a Store for the resource cfg describes.
func NewStore(client *clientv3.Client, cfg Config) *Store {
	return &Store{
		client: client,
		cfg:    cfg,
		codec:  codec{gvk: cfg.GVK, newFunc: cfg.NewFunc, transformer: cfg.Transformer, json: cfg.JSON},
		leases: newLeaseManager(client),
	}
}

// Create implements Interface. obj is prepared for storage in place (kind
// set, resourceVersion cleared), as upstream does.
func (s *Store) Create(ctx context.Context, key string, obj, out runtime.Object, ttl int64) error {
	data, err := s.codec.encode(obj)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	stored, err := s.codec.toStorage(data)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	var opts []clientv3.OpOption
	if ttl > 0 {
		id, err := s.leases.lease(ctx, ttl)
		if err != nil {
			return fmt.Errorf("create %s: %w", key, err)
		}
		opts = append(opts, clientv3.WithLease(id))
	}
	start := time.Now()
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(stored), opts...)).
		Commit()
	observe("create", s.cfg.resourceLabel(), start)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, etcdErr(err))
	}
	if !resp.Succeeded {
		return fmt.Errorf("create %s: %w", key, ErrAlreadyExists)
	}
	if out != nil {
		if err := s.codec.decodePlainInto(data, out, resp.Header.Revision); err != nil {
			return fmt.Errorf("create %s: %w", key, err)
		}
	}
	return nil
}

// Get implements Interface. The Store always reads the latest state, which
// satisfies every resourceVersion it is asked for that etcd has reached;
// one that etcd has not reached yet fails with ErrTimeout (upstream's
// "too large resource version").
func (s *Store) Get(ctx context.Context, key string, resourceVersion string, out runtime.Object) error {
	minRev, err := parseRV(resourceVersion)
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	start := time.Now()
	resp, err := s.client.Get(ctx, key)
	observe("get", s.cfg.resourceLabel(), start)
	if err != nil {
		return fmt.Errorf("get %s: %w", key, etcdErr(err))
	}
	if minRev > resp.Header.Revision {
		return fmt.Errorf("get %s: resourceVersion %d is newer than etcd's %d: %w", key, minRev, resp.Header.Revision, ErrTimeout)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	kv := resp.Kvs[0]
	if err := s.codec.decodeInto(kv.Value, out, kv.ModRevision); err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return nil
}

// CurrentResourceVersion implements Interface with a one-key read, whose
// response header carries etcd's revision.
func (s *Store) CurrentResourceVersion(ctx context.Context) (uint64, error) {
	rev, err := s.currentRevision(ctx)
	return uint64(rev), err
}

func (s *Store) currentRevision(ctx context.Context) (int64, error) {
	start := time.Now()
	resp, err := s.client.Get(ctx, s.cfg.Prefix, clientv3.WithKeysOnly(), clientv3.WithCountOnly())
	observe("get", s.cfg.resourceLabel(), start)
	if err != nil {
		return 0, fmt.Errorf("current revision: %w", etcdErr(err))
	}
	return resp.Header.Revision, nil
}

// etcdErr maps etcd's compaction error to ErrExpired; other errors pass
// through.
func etcdErr(err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("%w: %w", ErrExpired, err)
	}
	return err
}

// copyInto sets *out to a shallow copy of *src; both must be pointers to
// the same struct type. Callers pass a src they own (a deep copy) so that
// out shares nothing with the cache.
func copyInto(out, src runtime.Object) error {
	ov, sv := reflect.ValueOf(out), reflect.ValueOf(src)
	if ov.Kind() != reflect.Pointer || ov.IsNil() || sv.Kind() != reflect.Pointer || sv.IsNil() {
		return fmt.Errorf("copy %T into %T: not both non-nil pointers", src, out)
	}
	if ov.Type() != sv.Type() {
		return fmt.Errorf("copy %T into %T: types differ", src, out)
	}
	ov.Elem().Set(sv.Elem())
	return nil
}
