package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// staleChainDelay is how long a flushed, unreferenced chain waits before it
// is deleted. Kernels before 6.2 release a verdict map element's reference
// to a chain a little after the element is deleted, so deleting the chain in
// the same transaction fails (upstream waits the same second).
const staleChainDelay = time.Second

// syncer owns the table: it remembers what it programmed and turns a set of
// changed services into one transaction. It is used by one goroutine.
type syncer struct {
	nft     knftables.Interface
	nodeIPs []string
	now     func() time.Time

	applied  map[types.NamespacedName]*serviceRules
	stale    map[string]time.Time // flushed chains awaiting deletion, since when
	needFull bool                 // the next apply rewrites everything
	started  bool                 // a full sync has succeeded once
	noLocal  noLocalCounts        // the sum of applied's
}

func newSyncer(nft knftables.Interface, nodeIPs []string) *syncer {
	return &syncer{
		nft:      nft,
		nodeIPs:  nodeIPs,
		now:      time.Now,
		applied:  map[types.NamespacedName]*serviceRules{},
		stale:    map[string]time.Time{},
		needFull: true,
	}
}

// apply programs updates (a service's new rules; nil when it is gone or
// skipped) in one transaction holding only what changed. While a full sync
// is needed (the first one, or after a failure) updates must hold every
// service: the transaction then rewrites the whole table and removes what
// it does not know (and adds nil entries to updates for the services it
// forgets). On error nothing was applied and the next apply is a full one.
func (s *syncer) apply(ctx context.Context, updates map[types.NamespacedName]*serviceRules) error {
	full := s.needFull
	var existingChains, existingSets []string
	if full {
		var err error
		if existingChains, err = s.list(ctx, "chains"); err != nil {
			return err
		}
		if existingSets, err = s.list(ctx, "sets"); err != nil {
			return err
		}
	}

	// Chains the updates (re)create: a stale chain among them is back in
	// use. Services not in updates keep their chains, and none of those
	// can be stale.
	desired := map[string]bool{}
	for _, r := range updates {
		if r != nil {
			for c := range r.Chains {
				desired[c] = true
			}
		}
	}

	tx := s.nft.NewTransaction()
	if full {
		writeBase(tx, s.nodeIPs, !s.started)
	}
	// Chains stale long enough are deleted in the same transaction: every
	// nft run pays for loading the table's cache (~40ms at 10,000 chains),
	// so one run per sync is the budget. A full sync instead re-flushes
	// whatever it finds left over.
	var deleted []string
	if !full {
		deleted = s.deleteStale(tx, desired)
	}
	stale := s.planTransaction(tx, updates, full, existingChains, existingSets)
	if tx.NumOperations() == 0 {
		s.record(updates) // nothing changed: no nft run
		return nil
	}
	if err := s.nft.Run(ctx, tx); err != nil {
		s.needFull = true
		return fmt.Errorf("nft transaction (%d operations): %w", tx.NumOperations(), err)
	}

	for _, c := range deleted {
		delete(s.stale, c)
	}
	if full {
		clear(s.stale) // what still exists was just flushed again: see below
	}
	now := s.now()
	for _, c := range stale {
		s.stale[c] = now
	}
	for c := range s.stale {
		if desired[c] {
			delete(s.stale, c)
		}
	}
	if full {
		s.applied = map[types.NamespacedName]*serviceRules{}
		s.noLocal = noLocalCounts{}
	}
	s.record(updates)
	s.needFull, s.started = false, true
	return nil
}

// record makes updates the applied rules.
func (s *syncer) record(updates map[types.NamespacedName]*serviceRules) {
	for key, r := range updates {
		if old := s.applied[key]; old != nil {
			s.noLocal.add(old.NoLocal, -1)
		}
		if r == nil {
			delete(s.applied, key)
		} else {
			s.applied[key] = r
			s.noLocal.add(r.NoLocal, +1)
		}
	}
}

// planTransaction writes the operations for updates into tx and returns the
// chains it flushed because nothing uses them any more. Order matters:
// chains exist before elements and rules name them, referencing rules are
// flushed before the sets they use are deleted, old elements go before
// their replacements.
func (s *syncer) planTransaction(tx *knftables.Transaction, updates map[types.NamespacedName]*serviceRules, full bool, existingChains, existingSets []string) (stale []string) {
	var oldOf func(types.NamespacedName) *serviceRules
	if full {
		oldOf = func(types.NamespacedName) *serviceRules { return nil }
		// Services that vanished while we could not sync.
		for key := range s.applied {
			if _, ok := updates[key]; !ok {
				updates[key] = nil
			}
		}
	} else {
		oldOf = func(key types.NamespacedName) *serviceRules { return s.applied[key] }
	}
	keys := slices.SortedFunc(maps.Keys(updates), func(a, b types.NamespacedName) int {
		return strings.Compare(a.String(), b.String())
	})
	empty := newServiceRules()
	pairs := make([][2]*serviceRules, 0, len(keys))
	for _, key := range keys {
		old, cur := oldOf(key), updates[key]
		if old == nil {
			old = empty
		}
		if cur == nil {
			cur = empty
		}
		pairs = append(pairs, [2]*serviceRules{old, cur})
	}

	// 1. Chains: create and empty the new and changed ones, empty the
	// removed ones (deleted a sync later).
	var rewrite []string
	rules := map[string][]string{}
	for _, p := range pairs {
		old, cur := p[0], p[1]
		// A set whose timeout changed is recreated, so every rule naming
		// it must go first: rewrite all the service's chains.
		resetSets := false
		for set, t := range cur.Sets {
			if prev, ok := old.Sets[set]; ok && prev != t {
				resetSets = true
			}
		}
		for _, c := range sortedKeys(cur.Chains) {
			if prev, ok := old.Chains[c]; ok && !resetSets && slices.Equal(prev, cur.Chains[c]) {
				continue
			}
			rewrite = append(rewrite, c)
			rules[c] = cur.Chains[c]
			tx.Add(&knftables.Chain{Name: c})
			tx.Flush(&knftables.Chain{Name: c})
		}
		for _, c := range sortedKeys(old.Chains) {
			if _, ok := cur.Chains[c]; !ok {
				tx.Flush(&knftables.Chain{Name: c})
				stale = append(stale, c)
			}
		}
	}
	if full {
		// Leftovers of an earlier run or a failed sync.
		for _, c := range existingChains {
			if _, ok := rules[c]; !ok && isServiceObject(c) {
				tx.Flush(&knftables.Chain{Name: c})
				stale = append(stale, c)
			}
		}
		// Sets are recreated: their rules were all flushed above.
		for _, set := range existingSets {
			if isServiceObject(set) {
				tx.Delete(&knftables.Set{Name: set})
			}
		}
	}

	// 2. Affinity sets.
	for _, p := range pairs {
		old, cur := p[0], p[1]
		for _, set := range sortedKeys(old.Sets) {
			if t, ok := cur.Sets[set]; !ok || t != old.Sets[set] {
				tx.Delete(&knftables.Set{Name: set})
			}
		}
		for _, set := range sortedKeys(cur.Sets) {
			if t, ok := old.Sets[set]; !ok || t != cur.Sets[set] {
				tx.Add(&knftables.Set{
					Name: set,
					Type: "ipv4_addr",
					// dynamic: the packet path adds to it (and nft adds the
					// flag by itself, which would make a later add differ).
					Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
					Timeout: knftables.PtrTo(time.Duration(cur.Sets[set]) * time.Second),
				})
			}
		}
	}

	// 3. Verdict map elements.
	for _, p := range pairs {
		old, cur := p[0], p[1]
		for _, k := range sortedElementKeys(old.Elements) {
			if v, ok := cur.Elements[k]; !ok || v != old.Elements[k] {
				tx.Delete(&knftables.Element{Map: k.Map, Key: strings.Split(k.Key, " . ")})
			}
		}
	}
	for _, p := range pairs {
		old, cur := p[0], p[1]
		for _, k := range sortedElementKeys(cur.Elements) {
			if v, ok := old.Elements[k]; !ok || v != cur.Elements[k] {
				tx.Add(&knftables.Element{Map: k.Map, Key: strings.Split(k.Key, " . "), Value: []string{cur.Elements[k]}})
			}
		}
	}

	// 4. Rules of the rewritten chains.
	for _, c := range rewrite {
		for _, r := range rules[c] {
			tx.Add(&knftables.Rule{Chain: c, Rule: r})
		}
	}
	return stale
}

// deleteStale adds to tx the deletion of the chains flushed at least
// staleChainDelay ago that the new state does not bring back, and returns
// them.
func (s *syncer) deleteStale(tx *knftables.Transaction, desired map[string]bool) []string {
	cutoff := s.now().Add(-staleChainDelay)
	var deleted []string
	for c, since := range s.stale {
		if !desired[c] && !since.After(cutoff) {
			deleted = append(deleted, c)
		}
	}
	slices.Sort(deleted)
	for _, c := range deleted {
		tx.Delete(&knftables.Chain{Name: c})
	}
	return deleted
}

// list lists the table's objects of one type; a missing table has none.
func (s *syncer) list(ctx context.Context, what string) ([]string, error) {
	names, err := s.nft.List(ctx, what)
	if err != nil && !knftables.IsNotFound(err) {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return names, nil
}

// verify reports whether the kernel still has every chain the syncer
// programmed (someone may have deleted or flushed the table); if not, the
// next apply is a full one.
func (s *syncer) verify(ctx context.Context) error {
	if s.needFull {
		return nil
	}
	chains, err := s.list(ctx, "chains")
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(chains))
	for _, c := range chains {
		have[c] = true
	}
	for _, bc := range baseChains {
		if !have[bc.name] {
			s.needFull = true
			return nil
		}
	}
	for _, r := range s.applied {
		for c := range r.Chains {
			if !have[c] {
				s.needFull = true
				return nil
			}
		}
	}
	return nil
}

// deleteTable removes the table and everything in it.
func (s *syncer) deleteTable(ctx context.Context) error {
	tx := s.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := s.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("delete table: %w", err)
	}
	s.applied = map[types.NamespacedName]*serviceRules{}
	s.noLocal = noLocalCounts{}
	clear(s.stale)
	s.needFull, s.started = true, false
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func sortedElementKeys(m map[elementKey]string) []elementKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b elementKey) int {
		if c := strings.Compare(a.Map, b.Map); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
}
