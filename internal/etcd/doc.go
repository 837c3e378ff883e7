// Package etcd runs the embedded etcd member of `skiff server` and connects
// the API server's etcd client, to that member or to an external cluster
// (--etcd-servers).
//
// The embedded member is a single-member cluster bound to loopback only,
// with mutual TLS on both its client and peer ports (certificates from
// package pki). It is tuned to start fast and stay small: no gRPC gateway,
// no automatic compaction (the API server compacts, as upstream's does),
// a 2 GiB backend quota, logs at warn level through the process's slog
// logger. fsync stays on: a write the member acknowledged survives kill -9.
//
// Package etcdtest starts multi-member clusters for tests of the external
// mode.
package etcd
