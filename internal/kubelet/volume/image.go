package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// kindImage holds image volumes: <pod>/volumes/kubernetes.io~image/<name>
// is the mount point of the image's root filesystem. Upstream's kubelet
// has no such directory (the runtime mounts the image into the container
// itself); the name follows the other plugins'.
const kindImage = "kubernetes.io~image"

// imageMountTimeout bounds the mount of one image volume, and
// imageTearDownTimeout the unmounts of one pod's image volumes, so that a
// runtime that hangs does not hold a pod worker forever.
const (
	imageMountTimeout    = time.Minute
	imageTearDownTimeout = time.Minute
)

// ImageMounter makes an image's root filesystem appear at a directory on
// the node. The node agent backs it with its containerd
// (internal/image.Mounter); tests use fakes.
type ImageMounter interface {
	// Mount mounts the root filesystem of image (the runtime's ID of an
	// image it holds) read-only on dir, an existing directory. On an
	// error nothing stays mounted on dir.
	Mount(ctx context.Context, image, dir string) error
	// Unmount undoes Mount at dir: nothing stays mounted there and the
	// runtime keeps nothing for it. It is idempotent: a dir where nothing
	// is mounted (a node restart unmounts everything) is not an error.
	Unmount(ctx context.Context, dir string) error
}

// SetImageMounter makes the Manager able to mount image volumes. Without
// one (a runtime that is not skiff's own containerd) a pod with an image
// volume fails to start its containers with a clear error. Call it before
// the first pod is set up.
func (m *Manager) SetImageMounter(im ImageMounter) { m.images = im }

// ImageMounted reports whether the image volume name of pod is mounted.
// The kubelet resolves an image volume once per pod, as upstream's docs
// say ("the volume gets re-resolved if the pod gets deleted and
// recreated"): a mounted one is not pulled again.
func (m *Manager) ImageMounted(pod *v1.Pod, name string) (bool, error) {
	dir := m.volumeDir(pod.UID, kindImage, name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return isMountPoint(dir)
}

// MountImage mounts image (the runtime's ID of the image the kubelet
// pulled for the image volume name of pod) at the volume's directory,
// read-only, nosuid, nodev and noexec. It does nothing when the volume is
// already mounted. What an earlier mount left behind (the runtime's
// lease and view after a node restart) is removed first, so the volume
// shows image and nothing older.
func (m *Manager) MountImage(ctx context.Context, pod *v1.Pod, name, image string) error {
	if m.images == nil {
		return fmt.Errorf("image volume %q: image volumes need skiff's own containerd (the node's runtime cannot mount images)", name)
	}
	dir := m.volumeDir(pod.UID, kindImage, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("image volume %q: %w", name, err)
	}
	mounted, err := isMountPoint(dir)
	if err != nil {
		return fmt.Errorf("image volume %q: %w", name, err)
	}
	if mounted {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, imageMountTimeout)
	defer cancel()
	if err := m.images.Unmount(ctx, dir); err != nil {
		return fmt.Errorf("image volume %q: clear an earlier mount: %w", name, err)
	}
	if err := m.images.Mount(ctx, image, dir); err != nil {
		return fmt.Errorf("image volume %q: %w", name, err)
	}
	if err := restrictImageMount(dir); err != nil {
		return errors.Join(fmt.Errorf("image volume %q: %w", name, err), m.images.Unmount(ctx, dir))
	}
	m.log.Info("image volume mounted", "pod", pod.Namespace+"/"+pod.Name, "volume", name, "image", image)
	return nil
}

// imageVolumePath is where the image volume v of pod is mounted; it is an
// error to ask before MountImage has mounted it, so that a container
// never gets the empty directory instead.
func (m *Manager) imageVolumePath(pod *v1.Pod, v *v1.Volume) (string, error) {
	dir := m.volumeDir(pod.UID, kindImage, v.Name)
	mounted, err := isMountPoint(dir)
	if errors.Is(err, fs.ErrNotExist) {
		mounted, err = false, nil
	}
	if err != nil {
		return "", err
	}
	if !mounted {
		return "", fmt.Errorf("image volume %q (%s) is not mounted", v.Name, v.Image.Reference)
	}
	return dir, nil
}

// tearDownImages unmounts the pod's image volumes through the
// ImageMounter, which also releases what the runtime keeps for them. It
// looks at the directories on disk, not at a pod spec, so that it works
// for orphans and after a restart. Without an ImageMounter the mounts
// are left to TearDown's plain unmount.
func (m *Manager) tearDownImages(podUID types.UID) error {
	if m.images == nil {
		return nil
	}
	parent := filepath.Join(m.PodDir(podUID), "volumes", kindImage)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list image volumes: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), imageTearDownTimeout)
	defer cancel()
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := m.images.Unmount(ctx, filepath.Join(parent, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveImageSubPath resolves subPath inside the image mounted at root
// as a process that has the image as its root would: a symlink's
// absolute target starts from root, and `..` never climbs above root.
// Every element must exist (the volume is read-only: nothing is created).
// The result has no symlinks left in it.
func resolveImageSubPath(root, subPath string) (string, error) {
	const maxLinks = 40 // the kernel's limit
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolve volume path: %w", err)
	}
	var cur []string // resolved elements below root
	rest := strings.Split(subPath, "/")
	for links := 0; len(rest) > 0; {
		seg := rest[0]
		rest = rest[1:]
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		next := filepath.Join(append([]string{root}, append(cur, seg)...)...)
		info, err := os.Lstat(next)
		if err != nil {
			return "", fmt.Errorf("subPath %q in the image: %w", subPath, err)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = append(cur, seg)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("subPath %q in the image: too many levels of symbolic links", subPath)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("subPath %q in the image: %w", subPath, err)
		}
		if strings.HasPrefix(target, "/") {
			cur = nil
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(append([]string{root}, cur...)...), nil
}
