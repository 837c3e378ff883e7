package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Snapshotter is the snapshotter skiff's containerd unpacks images into
// (the CRI plugin's `snapshotter`, see internal/kubelet/containerd).
const Snapshotter = "overlayfs"

// gcRootLabel makes a containerd object a root of its garbage collector:
// it and what it references (a snapshot's parents) are kept whatever
// else is deleted.
const gcRootLabel = "containerd.io/gc.root"

// Mounter exposes images' root filesystems as directories through the
// containerd at Socket, for the kubelet's image volumes. containerd 1.6's
// CRI plugin cannot mount an image into a container (Mount.image is
// containerd 2.1's), so the node does it: `ctr images mount` makes a
// read-only View snapshot of the image's layers, keyed by the target
// directory under a lease of the same name, and mounts it there.
//
// ctr's lease expires after 24 hours, and containerd 1.6 does not follow a
// lease's gc.ref labels, so Mount also labels the view a GC root: the
// view and the layers under it then stay while the volume is mounted,
// even when the image itself is removed. Unmount removes the lease and
// the view; the layers go at containerd's next collection once no image
// holds them.
type Mounter struct {
	// Socket is containerd's socket.
	Socket string
	// Now stamps the GC root label; nil means time.Now.
	Now func() time.Time
}

// Mount mounts the root filesystem of image (a name or an ID of an image
// in the k8s.io namespace, unpacked) read-only on target, an existing
// directory. A view left at target by an earlier Mount that was not
// undone (a node restart unmounts without Unmount) is mounted again
// instead; call Unmount first to get image's content for sure. On an
// error nothing stays mounted on target.
func (m Mounter) Mount(ctx context.Context, image, target string) error {
	if _, err := ctr(ctx, m.Socket, "images", "mount", "--snapshotter", Snapshotter, "--rw=false", image, target); err != nil {
		return fmt.Errorf("mount image %s on %s: %w", image, target, err)
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	label := gcRootLabel + "=" + now().UTC().Format(time.RFC3339)
	if _, err := ctr(ctx, m.Socket, "snapshots", "--snapshotter", Snapshotter, "label", target, label); err != nil {
		err = fmt.Errorf("mount image %s on %s: keep the view: %w", image, target, err)
		return errors.Join(err, m.Unmount(ctx, target))
	}
	return nil
}

// Unmount undoes Mount: it unmounts target and removes the lease and the
// view snapshot named after it. It is idempotent: nothing mounted, no
// lease or no view is not an error, and a missing target is fine.
func (m Mounter) Unmount(ctx context.Context, target string) error {
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		// ctr unmount would fail on the path; the lease and the view
		// may still exist (a pod directory removed by hand).
		if err := os.MkdirAll(target, 0o700); err != nil {
			return fmt.Errorf("unmount image at %s: %w", target, err)
		}
		defer os.Remove(target)
	}
	if _, err := ctr(ctx, m.Socket, "images", "unmount", "--snapshotter", Snapshotter, "--rm", target); err != nil {
		return fmt.Errorf("unmount image at %s: %w", target, err)
	}
	return nil
}
