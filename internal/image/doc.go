// Package image makes and imports the container images a skiff node needs
// without a registry: it writes OCI image-layout tarballs (WriteOCI,
// WriteLayout), generates the pause image the pod sandboxes run (PauseRef,
// WritePause) and the test busybox image (WriteBusybox), and imports
// tarballs into the node's containerd in the k8s.io namespace, the one the
// CRI plugin serves (Import, ImportDir, EnsurePause).
//
// It also mounts images' root filesystems for the kubelet's image volumes
// (Mounter), which containerd 1.6's CRI cannot mount into containers.
//
// Imports and mounts go through containerd's ctr command, which Debian's
// containerd package installs beside containerd.
package image
