// Package containerd runs the node agent's own containerd: it writes a
// config (schema v2) that keeps every path under one directory, starts
// containerd, restarts it when it dies, stops it when the agent stops, and
// writes the CNI bridge network for the node's pod CIDR. The kubelet
// talks to it through CRI at Process.Endpoint().
//
// It targets containerd 1.6 with runc and the reference CNI plugins as
// Debian 12 packages them; renderConfig says why each setting is there.
package containerd
