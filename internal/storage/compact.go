package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CompactRevKey is the etcd key through which API servers sharing an etcd
// agree on who compacts: its version counts compaction rounds, its value
// is the revision the last round recorded. The name is upstream's, so a
// skiff and a kube-apiserver on one etcd would take turns correctly.
const CompactRevKey = "compact_rev_key"

// RunCompactor compacts etcd's history every interval until ctx ends,
// keeping one interval of history: each round compacts to the revision
// the previous round saw, so watches and continue tokens younger than one
// interval stay valid.
//
// Several API servers may run it against one etcd. Each round is a
// compare-and-swap on CompactRevKey's version: the server whose view of
// the round count is current wins the round, records the current revision
// and compacts to the one recorded before; the others learn the count and
// try again next interval. So etcd is compacted about once an interval
// whatever the number of servers.
func RunCompactor(ctx context.Context, client *clientv3.Client, interval time.Duration) {
	log := slog.Default().With("component", "compactor")
	var (
		round int64 // CompactRevKey's version as this server last saw it
		rev   int64 // the revision this server recorded last round
	)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		nextRound, nextRev, err := compactRound(ctx, client, round, rev)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("compaction failed", "err", err)
			}
			continue
		}
		round, rev = nextRound, nextRev
	}
}

// compactRound runs one round: if CompactRevKey's version is still round,
// it records the current revision and compacts to prevRev (none when
// prevRev is 0, the first round). It returns the round count and the
// revision to compact to next time.
func compactRound(ctx context.Context, client *clientv3.Client, round, prevRev int64) (int64, int64, error) {
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(CompactRevKey), "=", round)).
		Then(clientv3.OpPut(CompactRevKey, strconv.FormatInt(prevRev, 10))).
		Else(clientv3.OpGet(CompactRevKey)).
		Commit()
	if err != nil {
		return round, prevRev, fmt.Errorf("compare-and-swap %s: %w", CompactRevKey, err)
	}
	cur := resp.Header.Revision
	if !resp.Succeeded {
		// Another server ran this round; follow its count, and compact
		// next time (if we win) to what etcd is at now.
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			return 0, cur, nil
		}
		return kvs[0].Version, cur, nil
	}
	if prevRev > 0 {
		if _, err := client.Compact(ctx, prevRev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			return round + 1, cur, fmt.Errorf("compact to %d: %w", prevRev, err)
		}
		slog.Default().Debug("compacted etcd", "component", "compactor", "revision", prevRev)
	}
	return round + 1, cur, nil
}
