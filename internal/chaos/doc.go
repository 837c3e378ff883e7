// Package chaos is skiff's own reliability test. Writers create, update
// and delete ConfigMaps, watchers follow them, and a few clients race on a
// handful of keys, while the server is killed with SIGKILL at random
// moments and restarted. Afterwards the checks hold the server to what its
// answers promised:
//
//   - durability: every acknowledged write is in the store afterwards with
//     its acknowledged value (checkFinal), and no write a writer relied on
//     was lost on the way (an update or delete with the acknowledged
//     resourceVersion as precondition never meets a 409 or 404 on a key
//     only its writer touches);
//   - watches: each watcher, resuming from its last resourceVersion after
//     every restart (or relisting after a 410, which it may be answered),
//     sees each key's writes once each, in order, with the acknowledged
//     resourceVersions, and resourceVersions that only grow (checkWatch);
//   - linearizability: the history of consistent gets and of creates,
//     updates and deletes with resourceVersion preconditions on a few keys
//     is linearizable (checkLinearizable, with porcupine, as etcd's
//     robustness tests check etcd).
//
// A write whose answer was lost (the connection dropped by the kill, a
// timeout, a 5xx) is indeterminate: it may or may not have taken effect.
// A writer owns its keys, so it finds out which with a read once the
// server is back, and the checks then hold it to what it found; the
// linearizability model lets such an operation take effect or not.
//
// Run drives one run against a Server it may kill and restart: the e2e
// test (test/e2e/chaos_test.go) runs a short one on the built binary,
// `skiff bench chaos` a long one (docs/benchmarks.md).
package chaos
