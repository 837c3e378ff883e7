// Package etcd runs the embedded etcd member of `skiff server` and connects
// the API server's etcd client, to that member or to an external cluster
// (--etcd-servers).
//
// A stand-alone server's member is a single-member cluster bound to
// loopback ports chosen at start; a server of a cluster of servers
// (MemberConfig, cluster.go) listens on its address at etcd's ports and
// joins the others as a learner, promoted once caught up. Both use mutual
// TLS on their client and peer ports (certificates from package pki), no
// gRPC gateway, no automatic compaction (the API server compacts, as
// upstream's does), a 2 GiB backend quota, and log at warn level through
// the process's slog logger. fsync stays on: a write the member
// acknowledged survives kill -9. The API server reaches its own member in
// process; other tools find its client URL in ClientURLFile.
//
// Snapshots (snapshot.go) stream the member's database to a verified file;
// Restore (restore.go) makes a one-member data directory from one, for
// --cluster-reset. Package etcdtest starts multi-member clusters for tests
// of the external mode.
package etcd
