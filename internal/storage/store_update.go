package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// GuaranteedUpdate implements Interface. Each attempt reads the key (the
// first from etcd, later ones from the failed transaction's else branch),
// checks preconditions, calls tryUpdate on a freshly decoded object and
// writes with compare-and-swap on the mod revision it read. Updating an
// object that has a lease (ttl) keeps the lease.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, ignoreNotFound bool,
	preconditions *Preconditions, tryUpdate UpdateFunc) error {
	return s.guaranteedUpdate(ctx, key, out, ignoreNotFound, preconditions, tryUpdate, nil)
}

// guaranteedUpdate is GuaranteedUpdate starting from hint, the object as
// the watch cache holds it (its resourceVersion its mod revision), when
// not nil: the first attempt then needs no read from etcd. A stale hint
// costs one failed compare-and-swap, whose else branch brings the current
// value; a hint on which preconditions or tryUpdate fail, or on which the
// update changes nothing, is replaced by a fresh read before the answer
// is trusted (as upstream's cached GuaranteedUpdate does).
func (s *Store) guaranteedUpdate(ctx context.Context, key string, out runtime.Object, ignoreNotFound bool,
	preconditions *Preconditions, tryUpdate UpdateFunc, hint runtime.Object) error {
	if tryUpdate == nil {
		return fmt.Errorf("update %s: nil update func", key)
	}
	var kv *mvccpb.KeyValue
	// hinted is kv decoded: the hint's private copy, so that the first
	// attempt needs no decode either.
	var hinted runtime.Object
	fromCache := false
	if hint != nil {
		if kv, hinted = s.hintKV(key, hint); kv != nil {
			fromCache = true
		}
	}
	fresh := func() error {
		start := time.Now()
		resp, err := s.client.Get(ctx, key)
		observe("get", s.cfg.resourceLabel(), start)
		if err != nil {
			return fmt.Errorf("update %s: %w", key, etcdErr(err))
		}
		kv, fromCache = firstKV(resp.Kvs), false
		return nil
	}
	if !fromCache {
		if err := fresh(); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		var (
			cur     runtime.Object
			curData []byte // encoded, not as stored
			stale   bool   // stored with another key than the one that writes now
			modRev  int64
			err     error
		)
		if kv == nil {
			if !ignoreNotFound {
				return fmt.Errorf("update %s: %w", key, ErrNotFound)
			}
			cur = s.cfg.NewFunc()
		} else {
			curData, modRev = kv.Value, kv.ModRevision
			// A hint's kv holds the encoded value (hintKV); etcd's the
			// stored one.
			if !fromCache {
				if curData, stale, err = s.codec.fromStorage(kv.Value); err != nil {
					return fmt.Errorf("update %s: %w", key, err)
				}
			}
			if hinted != nil && fromCache {
				cur, hinted = hinted, nil
			} else if cur, err = s.codec.decodePlain(curData, modRev); err != nil {
				return fmt.Errorf("update %s: %w", key, err)
			}
		}
		if err := preconditions.check(key, cur); err != nil {
			if fromCache {
				if err := fresh(); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("update: %w", err)
		}
		updated, err := tryUpdate(cur)
		if err != nil {
			if fromCache {
				if err := fresh(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		data, err := s.codec.encode(updated)
		if err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		if kv != nil && bytes.Equal(data, curData) && fromCache {
			if err := fresh(); err != nil {
				return err
			}
			continue
		}
		if kv != nil && !stale && bytes.Equal(data, curData) {
			// Nothing changed: no write, and out is the stored object. A
			// stale value is rewritten all the same, under the key that
			// writes now: that is how keys rotate.
			if out != nil {
				if err := s.codec.decodePlainInto(curData, out, modRev); err != nil {
					return fmt.Errorf("update %s: %w", key, err)
				}
			}
			return nil
		}
		stored, err := s.codec.toStorage(data)
		if err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		var put clientv3.Op
		if kv == nil {
			put = clientv3.OpPut(key, string(stored))
		} else {
			put = clientv3.OpPut(key, string(stored), clientv3.WithIgnoreLease())
		}
		start := time.Now()
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
			Then(put).
			Else(clientv3.OpGet(key)).
			Commit()
		observe("update", s.cfg.resourceLabel(), start)
		if err != nil {
			return fmt.Errorf("update %s: %w", key, etcdErr(err))
		}
		if !txn.Succeeded {
			// Lost a race (or the hint was stale): retry on what is
			// stored now.
			kv, fromCache = firstKV(txn.Responses[0].GetResponseRange().GetKvs()), false
			continue
		}
		if out != nil {
			if err := s.codec.decodePlainInto(data, out, txn.Header.Revision); err != nil {
				return fmt.Errorf("update %s: %w", key, err)
			}
		}
		return nil
	}
}

// Delete implements Interface.
func (s *Store) Delete(ctx context.Context, key string, out runtime.Object, preconditions *Preconditions,
	check func(current runtime.Object) error) error {
	start := time.Now()
	resp, err := s.client.Get(ctx, key)
	observe("get", s.cfg.resourceLabel(), start)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, etcdErr(err))
	}
	kv := firstKV(resp.Kvs)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if kv == nil {
			return fmt.Errorf("delete %s: %w", key, ErrNotFound)
		}
		cur, err := s.codec.decode(kv.Value, kv.ModRevision)
		if err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if err := preconditions.check(key, cur); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if check != nil {
			if err := check(cur); err != nil {
				return err
			}
		}
		start := time.Now()
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).
			Else(clientv3.OpGet(key)).
			Commit()
		observe("delete", s.cfg.resourceLabel(), start)
		if err != nil {
			return fmt.Errorf("delete %s: %w", key, etcdErr(err))
		}
		if !txn.Succeeded {
			kv = firstKV(txn.Responses[0].GetResponseRange().GetKvs())
			continue
		}
		if out != nil {
			if err := s.codec.decodeInto(kv.Value, out, kv.ModRevision); err != nil {
				return fmt.Errorf("delete %s: %w", key, err)
			}
		}
		return nil
	}
}

func firstKV(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// hintKV renders a cached object as the key-value it was read from (its
// value encoded, not transformed for storage) and
// returns a private copy of it as that value decodes (the cache's objects
// are decoded from etcd, so a deep copy is what a decode would give, for
// less work); kv is nil if it cannot.
func (s *Store) hintKV(key string, hint runtime.Object) (kv *mvccpb.KeyValue, obj runtime.Object) {
	m, err := meta.Accessor(hint)
	if err != nil {
		return nil, nil
	}
	rev, err := parseRV(m.GetResourceVersion())
	if err != nil || rev <= 0 {
		return nil, nil
	}
	obj = hint.DeepCopyObject()
	data, err := s.codec.encode(obj) // clears obj's resourceVersion
	if err != nil {
		return nil, nil
	}
	if err := setResourceVersion(obj, rev); err != nil {
		return nil, nil
	}
	return &mvccpb.KeyValue{Key: []byte(key), Value: data, ModRevision: rev}, obj
}
