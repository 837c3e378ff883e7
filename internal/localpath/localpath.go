package localpath

import (
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The contract between the provisioner, the nodes and the kubelet.
const (
	// Provisioner is the StorageClass provisioner name of local-path
	// volumes.
	Provisioner = "skiff.io/local-path"
	// ClassName is the default StorageClass the server creates.
	ClassName = "local-path"
	// DirAnnotation on a Node is the directory its agent keeps local-path
	// volumes in (<data-dir>/storage); a node without it offers none.
	DirAnnotation = "skiff.io/local-path-dir"
	// NodeLabel on a volume names the node that holds its directory: that
	// node lists its volumes by it and alone may drop Finalizer.
	NodeLabel = "skiff.io/local-path-node"
	// Finalizer keeps a volume until its node has removed its directory
	// (reclaim policy Delete) or let it be (Retain).
	Finalizer = "skiff.io/local-path"
	// ProvisionedBy is upstream's annotation naming a volume's
	// provisioner.
	ProvisionedBy = "pv.kubernetes.io/provisioned-by"

	hostnameLabel = "kubernetes.io/hostname"
	defaultClass  = "storageclass.kubernetes.io/is-default-class"
)

// DefaultClass is the StorageClass the server creates when it is missing:
// volumes made on the node the scheduler picks for the first pod, deleted
// with their claim, and expandable (there is no quota to grow).
func DefaultClass() *storagev1.StorageClass {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	del := corev1.PersistentVolumeReclaimDelete
	expand := true
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{defaultClass: "true"},
		},
		Provisioner:          Provisioner,
		ReclaimPolicy:        &del,
		VolumeBindingMode:    &wffc,
		AllowVolumeExpansion: &expand,
	}
}

// Path is where the node whose storage directory is dir keeps volume pv.
func Path(dir, pv string) string { return filepath.Join(dir, pv) }

// Owns reports whether pv is a local-path volume of the node whose name is
// node and whose storage directory is dir, at the path that node gives it:
// only then may the node create or remove the directory. The path is
// checked rather than trusted, so that a volume written by hand with the
// label and annotation cannot make a node remove another directory.
func Owns(pv *corev1.PersistentVolume, node, dir string) bool {
	if pv == nil || dir == "" || pv.Annotations[ProvisionedBy] != Provisioner || pv.Labels[NodeLabel] != node {
		return false
	}
	local := pv.Spec.Local
	return local != nil && filepath.IsAbs(dir) && local.Path == Path(dir, pv.Name) &&
		pv.Name != "" && pv.Name != "." && pv.Name != ".." && filepath.Base(local.Path) == pv.Name
}
