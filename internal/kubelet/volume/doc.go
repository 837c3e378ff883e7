// Package volume materialises a pod's volumes on the node and turns a
// container's volumeMounts into CRI mounts.
//
// Every volume that lives on the node's disk is kept under
//
//	<root>/<podUID>/volumes/<kind>/<name>
//
// with the kind named as upstream's kubelet names its plugin directories
// (kubernetes.io~empty-dir, kubernetes.io~configmap, kubernetes.io~secret,
// kubernetes.io~downward-api, kubernetes.io~projected), so the tree reads like
// a kubelet's to anyone who knows one. hostPath volumes are not copied: the
// container gets the host path itself, after the `type` check.
//
// configMap, secret, downwardAPI and projected volumes are written the way
// upstream's AtomicWriter writes them: the content goes to a fresh
// timestamped directory, a `..data` symlink is swapped to it with rename(2),
// and each top-level key is a symlink `key -> ..data/key`. A container
// therefore sees a whole update at once. The kubelet calls SetUp on every
// pod sync; SetUp rewrites a volume only when its content changed.
//
// Secret and projected volumes (which hold tokens) live on a tmpfs when the
// process runs as root, as upstream does, so their content never reaches a
// disk; without root they are plain directories.
package volume
