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
// A persistentVolumeClaim volume is resolved once per pod, through the API,
// to the PV bound to the claim, with the checks and messages of upstream's
// volume manager; skiff mounts `local` and `hostPath` PVs, as upstream's
// plugins of those names do, and refuses the others. The container gets
// the PV's path itself (upstream bind-mounts it into the pod's directory
// first, to the same effect), read-only when the pod's volume source says
// readOnly. A writable local PV gets the pod's fsGroup the way upstream's
// SetVolumeOwnership gives it, once per pod; the record of that is kept
// under <root>/<podUID>/plugins/kubernetes.io~local-volume/<pv>.
//
// configMap, secret, downwardAPI and projected volumes are written the way
// upstream's AtomicWriter writes them: the content goes to a fresh
// timestamped directory, a `..data` symlink is swapped to it with rename(2),
// and each top-level key is a symlink `key -> ..data/key`. A container
// therefore sees a whole update at once. The kubelet calls SetUp on every
// pod sync; SetUp rewrites a volume only when its content changed.
//
// A pod's fsGroup is given, as upstream's SetVolumeOwnership gives it, to
// these volumes each time their content is written (group ownership, the
// group's read bits, setgid directories) and to an emptyDir once
// (ownership.go). A projected clusterTrustBundle source is read through
// the API on every sync and written as the distinct certificates of the
// bundles it selects (trustbundle.go). A podCertificate source is the key
// and chain that a PodCertificates source (internal/kubelet/podcert)
// holds for it; until one is issued the volume is not set up (podcert.go).
//
// Secret and projected volumes (which hold tokens) live on a tmpfs when the
// process runs as root, as upstream does, so their content never reaches a
// disk; without root they are plain directories.
//
// An image volume is mounted at <pod>/volumes/kubernetes.io~image/<name>
// (image.go): the kubelet pulls the image through CRI when a container
// that mounts it is about to start, and MountImage has the ImageMounter
// (the node's containerd, through ctr) mount the image's root filesystem
// there, read-only, nosuid, nodev and noexec. Upstream's runtime mounts
// it into the container itself (CRI Mount.image, containerd 2.1), which
// containerd 1.6 cannot. TearDown unmounts it through the ImageMounter,
// which also releases what containerd keeps for it.
package volume
