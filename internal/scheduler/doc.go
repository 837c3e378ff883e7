// Package scheduler assigns pending pods to nodes: skiff's kube-scheduler.
//
// It watches pods and nodes (and claims, volumes and storage classes)
// through informers, keeps a cache of what every node has allocated
// (including "assumed" pods that were decided but whose binding the
// informer has not confirmed yet), pops pods from a
// priority queue (active, backoff, unschedulable), and for each pod runs the
// default profile's filters and scores over the cache in one goroutine. The
// decision is a pure function of the cache (schedule.go); the API writes —
// pods/binding, the PodScheduled condition, FailedScheduling and Scheduled
// events, preemption's nominatedNodeName and victim deletions — run on a pool
// of bind workers so the decision loop never waits on HTTP. A pod whose
// WaitForFirstConsumer claims the scheduler binds or has provisioned
// waits for them in a goroutine of its own (VolumeBinding's PreBind)
// before its binding.
//
// Organization:
//   - podinfo.go: per-pod state computed once (requests, tolerations,
//     compiled selectors, ports, affinity terms, spread constraints).
//   - cache.go: nodes, pods on nodes, assumed pods, nominated pods;
//     matchindex.go: per-selector pod counts (per node and per topology
//     domain) and topology domain indexes the cache keeps so topology
//     spread does not rescan every pod or node.
//   - queue.go: the scheduling queue.
//   - filter.go, affinity.go, spread.go: the filter plugins;
//     volumes.go: the volume filters (VolumeRestrictions'
//     ReadWriteOncePod, VolumeBinding) over per-attempt state that
//     volumebinder.go reads from the claim, volume and class informers
//     (with the volumes and claims it assumed bound on top); prebind.go:
//     VolumeBinding's PreBind (the API writes, the wait for the claims).
//   - defaultspread.go: the system default topology spread constraints a
//     pod without its own gets, over the selectors of the Services and the
//     ReplicaSet or StatefulSet that select it (scoring only).
//   - score.go: the score plugins and their default weights.
//   - schedule.go: one scheduling decision over the cache.
//   - preempt.go: preemption of lower-priority pods.
//   - message.go: upstream's failure message format.
//   - scheduler.go: informer wiring, the loop, bind workers; bind.go: the
//     API writes.
package scheduler
