package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Plugin directory names under <pod>/volumes, as upstream names them.
const (
	kindEmptyDir    = "kubernetes.io~empty-dir"
	kindConfigMap   = "kubernetes.io~configmap"
	kindSecret      = "kubernetes.io~secret"
	kindDownwardAPI = "kubernetes.io~downward-api"
	kindProjected   = "kubernetes.io~projected"
)

// Manager materialises pods' volumes under one root directory (the
// kubelet's pods directory). It is safe for concurrent use by several pod
// workers; calls for one pod are expected to be serialised by its worker.
type Manager struct {
	root        string
	src         Sources
	allocatable func() v1.ResourceList
	log         *slog.Logger
	now         func() time.Time
	// tmpfs says whether memory-backed volumes get a real tmpfs; it needs
	// root (CAP_SYS_ADMIN). Without it they are plain directories.
	tmpfs bool
	// node and localPathDir are the node's name and its local-path
	// storage directory (SetLocalPath): the kubelet makes the directory
	// of such a volume at its first mount.
	node, localPathDir string
	// anchorOrderKey orders the certificates of clusterTrustBundle
	// files (orderAnchors): drawn once, so the order holds while the
	// kubelet runs.
	anchorOrderKey uint64

	// podCerts supplies podCertificate projections (SetPodCertificates).
	podCerts PodCertificates

	// images mounts image volumes (image.go); nil: not supported.
	images ImageMounter

	mu     sync.Mutex // guards tokens and claims
	tokens map[tokenKey]cachedToken
	claims map[types.UID]map[string]boundClaim // pod -> volume name
}

// New returns a Manager keeping pod directories under root. src supplies
// configMaps, secrets and tokens; nodeAllocatable (may be nil) supplies the
// node's allocatable resources, used as default limits for the downward
// API and to size memory-backed emptyDirs; log may be nil.
func New(root string, src Sources, nodeAllocatable func() v1.ResourceList, log *slog.Logger) *Manager {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	if log == nil {
		log = slog.Default()
	}
	return &Manager{
		root:        root,
		src:         src,
		allocatable: nodeAllocatable,
		log:         log,
		now:         time.Now,
		tmpfs:       os.Geteuid() == 0,
		// A fresh order on every start, as upstream's kubelet shuffles.
		anchorOrderKey: rand.Uint64(),
		tokens:         map[tokenKey]cachedToken{},
		claims:         map[types.UID]map[string]boundClaim{},
	}
}

// SetLocalPath makes the Manager create, at their first mount, the
// directories of the local-path volumes of node, which live in dir. Call
// it before the first pod is set up.
func (m *Manager) SetLocalPath(node, dir string) { m.node, m.localPathDir = node, dir }

// PodDir is the pod's directory, <root>/<podUID>. The kubelet may keep its
// own per-pod files there (etc-hosts); TearDown removes all of it.
func (m *Manager) PodDir(podUID types.UID) string {
	return filepath.Join(m.root, string(podUID))
}

func (m *Manager) volumeDir(podUID types.UID, kind, name string) string {
	return filepath.Join(m.root, string(podUID), "volumes", kind, name)
}

func (m *Manager) nodeAllocatable() v1.ResourceList {
	if m.allocatable == nil {
		return nil
	}
	return m.allocatable()
}

// SetUp materialises every volume of pod and refreshes the content of
// configMap, secret, downwardAPI and projected volumes; it is idempotent and
// meant to be called on every pod sync. Service account tokens are
// re-requested once 80% of their lifetime has passed; a
// persistentVolumeClaim is resolved once per pod. SetUp sets up every
// volume it can even when one fails, and returns the failures joined, each
// worded like one of upstream's FailedMount events:
//
//	MountVolume.SetUp failed for volume "cfg" : configmap "x" not found
//	Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: error processing PVC ns/data: PVC is not bound
//
// The second kind (claims that cannot be resolved) is one line for all
// such volumes, as upstream's volume manager reports them together. Its
// "unmounted volumes" lists every volume that failed; upstream's lists
// only those a container mounts (it does not wait for the others).
func (m *Manager) SetUp(ctx context.Context, pod *v1.Pod) error {
	if pod.UID == "" {
		return fmt.Errorf("pod %s/%s has no UID", pod.Namespace, pod.Name)
	}
	if err := os.MkdirAll(filepath.Join(m.PodDir(pod.UID), "volumes"), 0o750); err != nil {
		return fmt.Errorf("create volumes dir of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var (
		errs                   []error
		unmounted, unprocessed []string
		processErrs            []string
	)
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		err := m.setUpVolume(ctx, pod, v)
		if err == nil {
			continue
		}
		unmounted = append(unmounted, v.Name)
		var pe *processError
		var se *stepError
		switch {
		case errors.As(err, &pe):
			unprocessed = append(unprocessed, v.Name)
			processErrs = append(processErrs, pe.Error())
		case errors.As(err, &se):
			errs = append(errs, se)
		default:
			errs = append(errs, &stepError{"MountVolume.SetUp", v.Name, err})
		}
	}
	if len(processErrs) > 0 {
		slices.Sort(unmounted)
		slices.Sort(unprocessed)
		slices.Sort(processErrs)
		// Local and hostPath volumes are never attached, so no volume is
		// ever "unattached".
		errs = append([]error{fmt.Errorf("Unable to attach or mount volumes: unmounted volumes=%v, unattached volumes=[], failed to process volumes=%v: %s",
			unmounted, unprocessed, strings.Join(slices.Compact(processErrs), "; "))}, errs...)
	}
	return errors.Join(errs...)
}

func (m *Manager) setUpVolume(ctx context.Context, pod *v1.Pod, v *v1.Volume) error {
	switch {
	case v.EmptyDir != nil:
		return m.setUpEmptyDir(pod, v)
	case v.HostPath != nil:
		return checkHostPath(v.HostPath)
	case v.Image != nil:
		return nil // pulled and mounted when a container needs it (image.go)
	case v.PersistentVolumeClaim != nil:
		return m.setUpClaim(ctx, pod, v)
	case v.ConfigMap != nil:
		payload, err := m.configMapVolumePayload(ctx, pod, v.ConfigMap)
		if err != nil {
			return err
		}
		return m.writeContent(pod, v, kindConfigMap, false, payload)
	case v.Secret != nil:
		payload, err := m.secretVolumePayload(ctx, pod, v.Secret)
		if err != nil {
			return err
		}
		return m.writeContent(pod, v, kindSecret, true, payload)
	case v.DownwardAPI != nil:
		payload, err := m.downwardAPIPayload(pod, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode))
		if err != nil {
			return err
		}
		return m.writeContent(pod, v, kindDownwardAPI, false, payload)
	case v.Projected != nil:
		payload, err := m.projectedPayload(ctx, pod, v)
		if err != nil {
			return err
		}
		return m.writeContent(pod, v, kindProjected, true, payload)
	default:
		return fmt.Errorf("volume type %s is not supported by skiff", sourceKind(v))
	}
}

// writeContent makes the volume's directory (on a tmpfs when memory is set
// and the process may mount) hold exactly payload. With a pod fsGroup the
// files get the group's read bits in their modes, and each new content is
// given the group (setVolumeOwnership, read-only: these volumes are
// read-only to containers) before it is published, as upstream's
// AtomicWriter calls SetVolumeOwnership before it swaps ..data.
func (m *Manager) writeContent(pod *v1.Pod, v *v1.Volume, kind string, memory bool, payload map[string]fileProjection) error {
	dir := m.volumeDir(pod.UID, kind, v.Name)
	if err := m.ensureDir(dir, memory, m.memoryVolumeSize(pod, nil)); err != nil {
		return err
	}
	var setPerms func() error
	if g := fsGroupOf(pod); g != nil {
		for p, f := range payload {
			f.Mode = fsGroupMode(f.Mode, true, false)
			payload[p] = f
		}
		setPerms = func() error { return setVolumeOwnership(dir, *g, nil, true, m.log) }
	}
	changed, err := writeAtomic(dir, payload, m.now(), setPerms)
	if err != nil {
		return err
	}
	if changed {
		m.log.Debug("volume content written", "pod", pod.Namespace+"/"+pod.Name, "volume", v.Name, "files", len(payload))
	}
	return nil
}

// ensureDir creates a volume directory with mode 0777 (as upstream's
// emptyDir), mounting a tmpfs on it first when memory is asked for. The
// setgid bit an fsGroup gave the directory is kept.
func (m *Manager) ensureDir(dir string, memory bool, sizeBytes int64) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if memory && m.tmpfs {
		mounted, err := isMountPoint(dir)
		if err != nil {
			return err
		}
		if !mounted {
			if err := mountTmpfs(dir, sizeBytes); err != nil {
				return err
			}
		}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if want := 0o777 | info.Mode()&os.ModeSetgid; info.Mode()&(os.ModePerm|os.ModeSetgid) != want {
		if err := os.Chmod(dir, want); err != nil {
			return fmt.Errorf("chmod %s: %w", dir, err)
		}
	}
	return nil
}

// TearDown unmounts the pod's tmpfs volumes and removes its directory,
// and forgets its cached tokens. It refuses to remove anything while a
// mount is still present below the pod's directory, so that it never
// deletes through a mount into someone else's files. A pod without a
// directory is not an error.
func (m *Manager) TearDown(podUID types.UID) error {
	if podUID == "" {
		return errors.New("tear down: empty pod UID")
	}
	m.forgetTokens(podUID)
	m.forgetClaims(podUID)
	m.forgetPodCertificates(podUID)
	dir := m.PodDir(podUID)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := m.tearDownImages(podUID); err != nil {
		return fmt.Errorf("tear down pod %s: %w", podUID, err)
	}
	mps, err := mountPointsUnder(dir)
	if err != nil {
		return fmt.Errorf("tear down pod %s: %w", podUID, err)
	}
	var errs []error
	for _, mp := range mps {
		if err := unmount(mp); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down pod %s: %w", podUID, err)
	}
	if left, err := mountPointsUnder(dir); err != nil {
		return fmt.Errorf("tear down pod %s: %w", podUID, err)
	} else if len(left) > 0 {
		return fmt.Errorf("tear down pod %s: still mounted: %v", podUID, left)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("tear down pod %s: %w", podUID, err)
	}
	return nil
}

// PodUIDsOnDisk lists the pods that have a directory under the root, for
// the kubelet's orphan cleanup. A missing root yields no pods.
func (m *Manager) PodUIDsOnDisk() ([]types.UID, error) {
	entries, err := os.ReadDir(m.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod dirs: %w", err)
	}
	var out []types.UID
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// sourceKind names a volume source for "not supported" errors.
func sourceKind(v *v1.Volume) string {
	switch {
	case v.Ephemeral != nil:
		return "ephemeral"
	case v.CSI != nil:
		return "csi"
	case v.NFS != nil:
		return "nfs"
	case v.Image != nil:
		return "image"
	case v.ISCSI != nil:
		return "iscsi"
	case v.GitRepo != nil:
		return "gitRepo"
	case v.FC != nil:
		return "fc"
	default:
		return "(unknown)"
	}
}

// modeOr returns *mode, or upstream's default file mode 0644.
func modeOr(mode *int32) os.FileMode {
	if mode == nil {
		return 0o644
	}
	return os.FileMode(*mode) & os.ModePerm
}
