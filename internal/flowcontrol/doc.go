// Package flowcontrol is skiff's API Priority and Fairness: it decides,
// for each request the API server has authenticated and authorized,
// whether it runs now, waits for its turn, or is refused with 429, so that
// one client flooding the server cannot starve the scheduler, the kubelets
// or other users.
//
// The configuration is upstream's flowcontrol.apiserver.k8s.io/v1 objects,
// read through the API like any client's (Controller.Run runs informers on
// the server's loopback client; rule 1):
//
//   - A FlowSchema matches requests by subject (user, group, service
//     account) and by resource or non-resource rules. The matching schema
//     with the lowest matchingPrecedence (then the lowest name) classifies
//     the request; it names a priority level and how requests are split
//     into flows (ByUser, ByNamespace, or one flow).
//   - A PriorityLevelConfiguration is either Exempt (never limited) or
//     Limited: it gets a share of the server's concurrency limit, counted
//     in seats, and either rejects what does not fit (Reject) or queues it
//     (Queue: queues, handSize, queueLengthLimit).
//
// The mandatory objects (exempt and catch-all) are always in force, stored
// or not; the suggested ones are created by the server at start (package
// server's bootstrap; the objects are package registry/flowcontrol's).
//
// # Organization
//
//   - classify.go: FlowSchemas compiled into matchers; Classify.
//   - level.go: one priority level's seats and its fair queues: shuffle
//     sharding of flows onto queues, start-time fair queuing among them,
//     rejection when a queue is full or a request has waited too long.
//   - shuffle.go: a flow's hash and the hand of queues it is dealt.
//   - seats.go: how many seats a request occupies (LISTs more than one).
//   - retryafter.go: the Retry-After a rejected client is told.
//   - controller.go: the configuration as a whole (limits of every level,
//     reconfiguration in place) and Admit, the call the API server makes.
//   - run.go: the informers that feed the controller, and the FlowSchema
//     status it writes (the Dangling condition).
//   - metrics.go: upstream's apiserver_flowcontrol_* metrics, a few.
//
// # Differences from upstream
//
//   - No borrowing: each Limited level's limit is its nominal limit,
//     ceil(serverLimit × nominalConcurrencyShares / Σ shares), at least 1.
//     lendablePercent and borrowingLimitPercent are validated and stored
//     but change nothing. Upstream lends idle seats to busy levels every
//     10 s; with upstream's default objects that gives a single flooding
//     level about 370 of the 600 seats within seconds, which on a small
//     machine is all of its CPU, and the isolation this package exists
//     for is gone.
//   - Watches are classified (they get the response headers) but not
//     limited: upstream counts a watch's initialization against its level.
//     Other long-running requests (exec, attach, port-forward, logs,
//     proxy) are not classified, as upstream.
//   - A LIST occupies one seat per 100 objects it walks, as upstream's,
//     but up to two thirds of its level rather than upstream's 10 seats
//     (and 15% of the level, and its limit over its hand size): upstream's
//     cap lets every level run six LISTs of any size at once, which on a
//     2-core server is all of its CPU (see levelMaxSeats).
//   - Fair queuing is start-time fair queuing over seat-seconds with a
//     fixed estimate corrected when a request ends, a simpler form of
//     upstream's virtual-time dispatch; while the first request in line
//     waits for seats, narrower ones run past it in the seats it will
//     leave free (upstream makes them wait). A mutating request occupies
//     one seat (upstream adds seats for the watch notifications it
//     causes).
//   - The object counts behind a LIST's seats come from a count of the
//     stored objects refreshed every 30 s on demand (see package
//     apiserver), not from upstream's periodic tracker.
package flowcontrol
