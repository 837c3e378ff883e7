package kubelet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ImageVolumes mounts `image` volumes: an OCI image's root filesystem,
// read-only, as a pod volume. A Volumes that implements it as well
// (internal/kubelet/volume's Manager does) serves the pods' image
// volumes; with any other, a container that mounts one fails to start.
//
// Upstream's kubelet pulls the image and hands the runtime an image
// mount (CRI Mount.image, containerd 2.1). containerd 1.6 has none, so
// skiff's kubelet pulls the image through CRI as it pulls a container's
// and the volume manager mounts it on the node; the container then gets
// it as a host-path bind mount.
type ImageVolumes interface {
	// ImageMounted reports whether the image volume name of pod is
	// mounted. A mounted one is not pulled again: the volume is resolved
	// once per pod.
	ImageMounted(pod *corev1.Pod, name string) (bool, error)
	// MountImage mounts image, the runtime's ID of the pulled image, as
	// the image volume name of pod. Volumes.Mounts then serves it.
	MountImage(ctx context.Context, pod *corev1.Pod, name, image string) error
}

// ensureImageVolumes pulls and mounts the image volumes container c
// mounts, before c is created, as upstream does: each image as its
// volume's pullPolicy says, with the pod's imagePullSecrets and the same
// events as a container image. A pull that fails shows on c as its
// waiting reason (ErrImagePull, ImagePullBackOff, ErrImageNeverPull) and
// the pull has its own back-off; containers that do not mount the volume
// start regardless.
func (r *podRun) ensureImageVolumes(ctx context.Context, c *corev1.Container) error {
	k, pod := r.k, r.pod
	key := waitKey(pod.UID, c.Name)
	iv, ok := k.cfg.Volumes.(ImageVolumes)
	for _, v := range imageVolumesOf(pod, c) {
		if !ok {
			return k.imageVolumeFailed(pod, c, fmt.Errorf("image volume %q: this node cannot mount image volumes", v.Name))
		}
		mounted, err := iv.ImageMounted(pod, v.Name)
		if err != nil {
			return fmt.Errorf("image volume %q of pod %s: %w", v.Name, klogRef(pod), err)
		}
		if mounted {
			continue
		}
		img, err := k.pullImage(ctx, pod, pullRequest{
			image: v.Image.Reference, policy: v.Image.PullPolicy, waitKey: key,
			// The trailing slash: forgetting one volume's back-off (a
			// prefix) must not forget another's whose name extends it.
			backoffKey: fmt.Sprintf("pull/%s/~volume/%s/", pod.UID, v.Name),
		}, r.sbCfg)
		if err != nil {
			return err
		}
		if err := iv.MountImage(ctx, pod, v.Name, img.ref); err != nil {
			return k.imageVolumeFailed(pod, c, err)
		}
	}
	return nil
}

// imageVolumeFailed reports an image volume that could not be mounted on
// c as the runtime's failure to create it would be (upstream's containerd
// mounts image volumes in CreateContainer), and retries in a while.
func (k *Kubelet) imageVolumeFailed(pod *corev1.Pod, c *corev1.Container, err error) error {
	k.log.Warn("image volume", "pod", klogRef(pod), "container", c.Name, "err", err)
	k.setWaiting(waitKey(pod.UID, c.Name), "CreateContainerError", err.Error())
	k.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
	k.queue.AddAfter(pod.UID, imageVolumeRetry)
	return errWaiting
}

// imageVolumeRetry is how soon a failed image volume mount is tried again.
const imageVolumeRetry = 5 * time.Second

// imageVolumesOf are the image volumes c mounts, each once, in the order
// of its volumeMounts.
func imageVolumesOf(pod *corev1.Pod, c *corev1.Container) []*corev1.Volume {
	var out []*corev1.Volume
	seen := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		if seen[vm.Name] {
			continue
		}
		for i := range pod.Spec.Volumes {
			if v := &pod.Spec.Volumes[i]; v.Name == vm.Name && v.Image != nil {
				seen[vm.Name] = true
				out = append(out, v)
			}
		}
	}
	return out
}
