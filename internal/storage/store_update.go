package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

// GuaranteedUpdate implements Interface. Each attempt reads the key (the
// first from etcd, later ones from the failed transaction's else branch),
// checks preconditions, calls tryUpdate on a freshly decoded object and
// writes with compare-and-swap on the mod revision it read. Updating an
// object that has a lease (ttl) keeps the lease.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, ignoreNotFound bool,
	preconditions *Preconditions, tryUpdate UpdateFunc) error {
	if tryUpdate == nil {
		return fmt.Errorf("update %s: nil update func", key)
	}
	start := time.Now()
	resp, err := s.client.Get(ctx, key)
	observe("get", s.cfg.resourceLabel(), start)
	if err != nil {
		return fmt.Errorf("update %s: %w", key, etcdErr(err))
	}
	kv := firstKV(resp.Kvs)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		var (
			cur     runtime.Object
			curData []byte
			modRev  int64
		)
		if kv == nil {
			if !ignoreNotFound {
				return fmt.Errorf("update %s: %w", key, ErrNotFound)
			}
			cur = s.cfg.NewFunc()
		} else {
			curData, modRev = kv.Value, kv.ModRevision
			if cur, err = s.codec.decode(curData, modRev); err != nil {
				return fmt.Errorf("update %s: %w", key, err)
			}
		}
		if err := preconditions.check(key, cur); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		updated, err := tryUpdate(cur)
		if err != nil {
			return err
		}
		data, err := s.codec.encode(updated)
		if err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		if kv != nil && bytes.Equal(data, curData) {
			// Nothing changed: no write, and out is the stored object.
			if out != nil {
				if err := s.codec.decodeInto(curData, out, modRev); err != nil {
					return fmt.Errorf("update %s: %w", key, err)
				}
			}
			return nil
		}
		var put clientv3.Op
		if kv == nil {
			put = clientv3.OpPut(key, string(data))
		} else {
			put = clientv3.OpPut(key, string(data), clientv3.WithIgnoreLease())
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
			// Lost a race: retry on what is stored now.
			kv = firstKV(txn.Responses[0].GetResponseRange().GetKvs())
			continue
		}
		if out != nil {
			if err := s.codec.decodeInto(data, out, txn.Header.Revision); err != nil {
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
