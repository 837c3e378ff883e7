package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// maxPageSize bounds one etcd range read while a predicate filters a
// paginated list.
const maxPageSize = 10000

// listRevision is where a list reads: at exactly rev (rev > 0), or at the
// latest revision, which must be at least minRev.
type listRevision struct {
	rev, minRev int64
	startKey    string
}

// planList works out the revision and start key of a list under prefix.
func planList(prefix string, opts ListOptions) (listRevision, error) {
	if opts.Continue != "" {
		if opts.ResourceVersion != "" {
			return listRevision{}, fmt.Errorf("%w: resourceVersion may not be set with continue", ErrInvalidContinue)
		}
		rev, start, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return listRevision{}, err
		}
		return listRevision{rev: rev, startKey: start}, nil
	}
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return listRevision{}, err
	}
	switch opts.ResourceVersionMatch {
	case metav1.ResourceVersionMatchExact:
		if rv == 0 {
			return listRevision{}, fmt.Errorf("resourceVersionMatch=Exact needs a resourceVersion other than %q: %w",
				opts.ResourceVersion, ErrInvalidResourceVersion)
		}
		return listRevision{rev: rv, startKey: prefix}, nil
	case metav1.ResourceVersionMatchNotOlderThan:
		return listRevision{minRev: rv, startKey: prefix}, nil
	case "":
		if rv > 0 && opts.Limit > 0 {
			// Legacy: a paginated list at "N" reads exactly at N.
			return listRevision{rev: rv, startKey: prefix}, nil
		}
		return listRevision{minRev: rv, startKey: prefix}, nil
	default:
		return listRevision{}, fmt.Errorf("resourceVersionMatch %q: %w", opts.ResourceVersionMatch, ErrInvalidResourceVersion)
	}
}

// List implements Interface. A list with a limit reads pages of at most
// limit keys from etcd, all at the revision of the first, until it has
// limit matching items or the range ends; when a predicate filters, pages
// grow so that sparse matches do not cost one round trip per item.
func (s *Store) List(ctx context.Context, prefix string, opts ListOptions, listObj runtime.Object) error {
	if !isPrefix(prefix) {
		prefix += "/"
	}
	lm, err := meta.ListAccessor(listObj)
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	items, err := newListItems(listObj)
	if err != nil {
		return err
	}
	if err := checkPredicate(opts.Predicate); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	plan, err := planList(prefix, opts)
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	pred := opts.Predicate
	filter := !pred.Empty()
	limit := opts.Limit
	pageSize := limit
	rangeEnd := prefixEnd(prefix)
	withRev := plan.rev
	startKey := plan.startKey

	var (
		more      bool
		nextKey   string
		remaining int64
	)
pages:
	for {
		getOpts := []clientv3.OpOption{clientv3.WithRange(rangeEnd)}
		if withRev > 0 {
			getOpts = append(getOpts, clientv3.WithRev(withRev))
		}
		if limit > 0 {
			getOpts = append(getOpts, clientv3.WithLimit(pageSize))
		}
		start := time.Now()
		resp, err := s.client.Get(ctx, startKey, getOpts...)
		observe("list", s.cfg.resourceLabel(), start)
		if err != nil {
			err = etcdErr(err)
			if errors.Is(err, ErrExpired) && opts.Continue != "" {
				return expiredContinue(startKey, prefix)
			}
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if withRev == 0 {
			withRev = resp.Header.Revision
			if plan.minRev > withRev {
				return fmt.Errorf("list %s: resourceVersion %d is newer than etcd's %d: %w",
					prefix, plan.minRev, withRev, ErrTimeout)
			}
		}
		items.grow(len(resp.Kvs))
		for i, kv := range resp.Kvs {
			obj, err := items.next()
			if err != nil {
				return err
			}
			if err := s.codec.decodeInto(kv.Value, obj, kv.ModRevision); err != nil {
				return fmt.Errorf("list %s: %s: %w", prefix, kv.Key, err)
			}
			if filter {
				ok, err := pred.Matches(obj)
				if err != nil {
					return fmt.Errorf("list %s: %s: %w", prefix, kv.Key, err)
				}
				if !ok {
					items.drop()
					continue
				}
			}
			if limit > 0 && int64(items.len()) == limit {
				more = i < len(resp.Kvs)-1 || resp.More
				nextKey = string(kv.Key) + "\x00"
				remaining = resp.Count - int64(i+1)
				break pages
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		startKey = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		if filter {
			pageSize = min(pageSize*2, max(maxPageSize, limit))
		}
	}
	lm.SetResourceVersion(formatRV(withRev))
	lm.SetContinue("")
	lm.SetRemainingItemCount(nil)
	if more {
		token, err := encodeContinue(nextKey, prefix, withRev)
		if err != nil {
			return err
		}
		lm.SetContinue(token)
		if !filter {
			lm.SetRemainingItemCount(&remaining)
		}
	}
	return nil
}
