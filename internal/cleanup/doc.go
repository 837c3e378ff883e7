// Package cleanup stops a skiff node and removes what it left on the host,
// for `skiff killall` and `skiff uninstall`.
//
// Stopping `skiff server` or `skiff agent` leaves pods running on purpose:
// the next start adopts them. KillAll is the way to stop them too: it stops
// the skiff processes of one data dir, every pod of that data dir's own
// containerd, the containerd and its shims, and then removes what they
// made outside the data dir's files: mounts under the data dir, the pod
// bridge and its veths, network namespaces, and — when no other skiff node
// runs on the machine — the node-local DNS interface, the service proxy's
// nftables table and the pod network (internal/podnet: its routes, VXLAN
// device and masquerade table). It keeps the data (etcd, certificates, images),
// so that the next `skiff server` starts clean on it. Uninstall does the
// same and then removes the data dir.
//
// Everything is found from the data dir, never by name alone: processes
// by their command line (or the data dir lock's holder), shims by the
// containerd socket on theirs, network namespaces by the namespaces of
// those shims' children. A system containerd and its containers are never
// touched. Each step tolerates finding nothing to do, so both are safe to
// run twice; each thing stopped or removed is reported on one line.
//
// k3s ships shell scripts for the same jobs (k3s-killall.sh,
// k3s-uninstall.sh); this is our own, narrower by design: it removes only
// what can be traced to the data dir.
package cleanup
