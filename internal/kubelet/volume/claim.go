package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/localpath"
)

// kindLocalVolume is upstream's plugin directory for local PVs; skiff keeps
// only its per-pod bookkeeping there (under <pod>/plugins), since the
// container gets the PV's path itself.
const kindLocalVolume = "kubernetes.io~local-volume"

// pvcProtectionFinalizer keeps a claim that pods use from going away; a
// claim being deleted with it still in place is still usable, as upstream.
const pvcProtectionFinalizer = "kubernetes.io/pvc-protection"

// boundClaim is a persistentVolumeClaim volume resolved to the node path
// of its PV, once per pod: upstream resolves and mounts a pod's claim once,
// not on every sync, and a pod keeps what it got.
type boundClaim struct {
	pv       string // the PV's name; upstream's events name the volume by it
	path     string // on the node
	readOnly bool   // the pod's volume source said readOnly
}

// processError is a volume the kubelet could not turn into something to
// mount: a claim that is missing, unbound or bound to a PV no plugin can
// mount. Upstream's desired-state populator fails on these, and its kubelet
// reports them all in one "Unable to attach or mount volumes" event.
type processError struct{ err error }

func (e *processError) Error() string { return e.err.Error() }
func (e *processError) Unwrap() error { return e.err }

// stepError is a failed step of mounting one volume, worded as upstream's
// operation generator words it: `MountVolume.SetUp failed for volume "pv" : ...`,
// with the volume named by its spec (the PV's name for a claim).
type stepError struct {
	step, volume string
	err          error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s failed for volume %q : %v", e.step, e.volume, e.err)
}
func (e *stepError) Unwrap() error { return e.err }

// setUpClaim resolves a persistentVolumeClaim volume to its PV and checks
// that the PV can be given to the pod's containers: a `local` PV whose path
// exists (as a directory; upstream does not create it), or a `hostPath` PV
// after its `type` check. A local PV the pod may write gets the pod's
// fsGroup, once. Other PV types are refused.
func (m *Manager) setUpClaim(ctx context.Context, pod *v1.Pod, v *v1.Volume) error {
	if _, ok := m.claim(pod.UID, v.Name); ok {
		return nil
	}
	src := v.PersistentVolumeClaim
	pv, err := m.resolveClaim(ctx, pod, v)
	if err != nil {
		return &processError{err}
	}
	bc := boundClaim{pv: pv.Name, readOnly: src.ReadOnly}
	switch {
	case pv.Spec.Local != nil:
		bc.path = pv.Spec.Local.Path
		if err := m.makeLocalPath(pv); err != nil {
			return &stepError{"MountVolume.SetUp", pv.Name, err}
		}
		if err := m.setUpLocal(pod, bc); err != nil {
			return err
		}
	case pv.Spec.HostPath != nil:
		bc.path = pv.Spec.HostPath.Path
		if err := noBacksteps(bc.path); err != nil {
			return &stepError{"MountVolume.SetUp", pv.Name, fmt.Errorf("invalid HostPath `%s`: %w", bc.path, err)}
		}
		if err := checkHostPath(pv.Spec.HostPath); err != nil {
			return &stepError{"MountVolume.SetUp", pv.Name, err}
		}
	default:
		// Upstream's kubelet finds no plugin for the PV (or a CSI plugin
		// whose driver is not registered); skiff has no other plugins.
		return &processError{fmt.Errorf("failed to get Plugin from volumeSpec for volume %q err=no volume plugin matched: volume type %s is not supported by skiff", pv.Name, pvSourceKind(pv))}
	}
	m.mu.Lock()
	if m.claims[pod.UID] == nil {
		m.claims[pod.UID] = map[string]boundClaim{}
	}
	m.claims[pod.UID][v.Name] = bc
	m.mu.Unlock()
	m.log.Debug("persistentVolumeClaim volume set up", "pod", pod.Namespace+"/"+pod.Name,
		"volume", v.Name, "pv", bc.pv, "path", bc.path, "readOnly", bc.readOnly)
	return nil
}

// resolveClaim fetches the pod's claim and the PV bound to it, with the
// checks and error texts of upstream's desired-state populator.
func (m *Manager) resolveClaim(ctx context.Context, pod *v1.Pod, v *v1.Volume) (*v1.PersistentVolume, error) {
	name := v.PersistentVolumeClaim.ClaimName
	wrap := func(err error) error {
		return fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, name, err)
	}
	pvc, err := m.src.PersistentVolumeClaim(ctx, pod.Namespace, name)
	if err != nil {
		return nil, wrap(fmt.Errorf("failed to fetch PVC from API server: %w", err))
	}
	switch {
	case pvc.DeletionTimestamp != nil && !slices.Contains(pvc.Finalizers, pvcProtectionFinalizer):
		return nil, wrap(errors.New("PVC is being deleted"))
	case pvc.Status.Phase != v1.ClaimBound:
		return nil, wrap(errors.New("PVC is not bound"))
	case pvc.Spec.VolumeName == "":
		return nil, wrap(errors.New("PVC has empty pvc.Spec.VolumeName"))
	}
	pvName := pvc.Spec.VolumeName
	pv, err := m.src.PersistentVolume(ctx, pvName)
	if err != nil {
		return nil, wrap(fmt.Errorf("failed to fetch PV %s from API server: %w", pvName, err))
	}
	if pv.Spec.ClaimRef == nil {
		return nil, wrap(fmt.Errorf("found PV object %s but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim", pvName))
	}
	if pv.Spec.ClaimRef.UID != pvc.UID {
		return nil, wrap(fmt.Errorf("found PV object %s but its pv.Spec.ClaimRef.UID %s does not point to claim.UID %s", pvName, pv.Spec.ClaimRef.UID, pvc.UID))
	}
	mode := v1.PersistentVolumeFilesystem
	if pv.Spec.VolumeMode != nil {
		mode = *pv.Spec.VolumeMode
	}
	mounted, devices := usedAs(pod, v.Name)
	switch {
	case mounted && mode != v1.PersistentVolumeFilesystem:
		return nil, wrap(fmt.Errorf("volume %s has volumeMode %s, but is specified in volumeMounts", v.Name, mode))
	case devices && mode != v1.PersistentVolumeBlock:
		return nil, wrap(fmt.Errorf("volume %s has volumeMode %s, but is specified in volumeDevices", v.Name, mode))
	case mode == v1.PersistentVolumeBlock:
		return nil, wrap(fmt.Errorf("volume %s has volumeMode Block: raw block volumes are not supported by skiff", v.Name))
	}
	return pv, nil
}

// makeLocalPath creates the directory of one of the node's local-path
// volumes at its first mount, writable by every user as the volume's
// owner cannot be known (an fsGroup narrows it afterwards). Any other
// local volume's path must exist already, as upstream.
func (m *Manager) makeLocalPath(pv *v1.PersistentVolume) error {
	if !localpath.Owns(pv, m.node, m.localPathDir) || pathExists(pv.Spec.Local.Path) {
		return nil
	}
	if err := os.MkdirAll(m.localPathDir, 0o711); err != nil {
		return fmt.Errorf("creating the local-path directory: %w", err)
	}
	if err := os.Mkdir(pv.Spec.Local.Path, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating the local-path directory: %w", err)
	}
	// The umask narrowed the mode.
	return os.Chmod(pv.Spec.Local.Path, 0o777)
}

// setUpLocal checks a local PV's path as upstream's local plugin does (it
// must exist and be a directory) and gives the volume the pod's fsGroup.
func (m *Manager) setUpLocal(pod *v1.Pod, bc boundClaim) error {
	// Upstream's local plugin reads the path's type when it makes its
	// mounter, so these failures carry that step's name.
	if !pathExists(bc.path) {
		return &stepError{"MountVolume.NewMounter initialization", bc.pv, fmt.Errorf("path %q does not exist", bc.path)}
	}
	typ, err := fileType(bc.path)
	if err != nil {
		return &stepError{"MountVolume.NewMounter initialization", bc.pv, err}
	}
	switch typ {
	case v1.HostPathDirectory:
	case v1.HostPathBlockDev:
		return &stepError{"MountVolume.NewMounter initialization", bc.pv,
			fmt.Errorf("local volume path %s is a block device: formatting and mounting it is not supported by skiff", bc.path)}
	default:
		return &stepError{"MountVolume.NewMounter initialization", bc.pv, errors.New("only directory and block device are supported")}
	}
	if err := noBacksteps(bc.path); err != nil {
		return &stepError{"MountVolume.SetUp", bc.pv, fmt.Errorf("invalid path: %s %w", bc.path, err)}
	}
	if bc.readOnly {
		return nil // upstream changes no ownership on a read-only mount
	}
	if err := m.applyFSGroup(pod, bc); err != nil {
		return &stepError{"MountVolume.SetUp", bc.pv, err}
	}
	return nil
}

// applyFSGroup gives a local volume the pod's fsGroup, once per pod (the
// record is a file under the pod's plugins directory, so a restarted
// kubelet does not walk the volume again), and not while another pod on
// the node uses the volume: upstream writes the owner only on the first
// mount, and warns when the group differs.
func (m *Manager) applyFSGroup(pod *v1.Pod, bc boundClaim) error {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil {
		return nil
	}
	done := filepath.Join(m.PodDir(pod.UID), "plugins", kindLocalVolume, bc.pv, "ownership-applied")
	if pathExists(done) {
		return nil
	}
	if other, ok := m.otherUser(pod.UID, bc.pv); ok {
		if gid, err := groupOf(bc.path); err == nil && gid != *sc.FSGroup {
			m.log.Warn("volume already used by another pod with a different group; the volume may not be shareable",
				"pod", pod.Namespace+"/"+pod.Name, "pv", bc.pv, "fsGroup", *sc.FSGroup, "volumeGID", gid, "otherPod", other)
		}
	} else if err := setVolumeOwnership(bc.path, *sc.FSGroup, sc.FSGroupChangePolicy, false, m.log); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(done), 0o750); err != nil {
		return err
	}
	return os.WriteFile(done, nil, 0o600)
}

// claim is the pod's resolved claim volume, once setUpClaim succeeded.
func (m *Manager) claim(podUID types.UID, volume string) (boundClaim, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bc, ok := m.claims[podUID][volume]
	return bc, ok
}

// otherUser names another pod that has the PV set up on this node.
func (m *Manager) otherUser(podUID types.UID, pv string) (types.UID, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, vols := range m.claims {
		if uid == podUID {
			continue
		}
		for _, bc := range vols {
			if bc.pv == pv {
				return uid, true
			}
		}
	}
	return "", false
}

func (m *Manager) forgetClaims(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.claims, podUID)
}

// usedAs reports whether a container of the pod (init, regular or
// ephemeral) mounts the volume, and whether one uses it as a device.
func usedAs(pod *v1.Pod, volume string) (mounted, device bool) {
	check := func(mounts []v1.VolumeMount, devices []v1.VolumeDevice) {
		for _, vm := range mounts {
			mounted = mounted || vm.Name == volume
		}
		for _, d := range devices {
			device = device || d.Name == volume
		}
	}
	for _, c := range pod.Spec.InitContainers {
		check(c.VolumeMounts, c.VolumeDevices)
	}
	for _, c := range pod.Spec.Containers {
		check(c.VolumeMounts, c.VolumeDevices)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		check(c.VolumeMounts, c.VolumeDevices)
	}
	return mounted, device
}

// noBacksteps is upstream's ValidatePathNoBacksteps.
func noBacksteps(path string) error {
	if slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "..") {
		return errors.New("must not contain '..'")
	}
	return nil
}

// pvSourceKind names a PV's volume source for "not supported" errors.
func pvSourceKind(pv *v1.PersistentVolume) string {
	s := &pv.Spec.PersistentVolumeSource
	switch {
	case s.CSI != nil:
		return "csi"
	case s.NFS != nil:
		return "nfs"
	case s.ISCSI != nil:
		return "iscsi"
	case s.FC != nil:
		return "fc"
	case s.RBD != nil:
		return "rbd"
	case s.CephFS != nil:
		return "cephfs"
	case s.Glusterfs != nil:
		return "glusterfs"
	case s.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case s.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case s.AzureDisk != nil:
		return "azureDisk"
	case s.AzureFile != nil:
		return "azureFile"
	case s.VsphereVolume != nil:
		return "vsphereVolume"
	case s.FlexVolume != nil:
		return "flexVolume"
	default:
		return "(unknown)"
	}
}
