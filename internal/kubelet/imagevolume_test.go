package kubelet_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/kubelet"
	"github.com/skiff-io/skiff/test/framework"
)

// imageVolumes is a Volumes that also mounts image volumes: it records
// which image each one got and serves it at /images/<name>.
type imageVolumes struct {
	noVolumes
	mu      sync.Mutex
	mounted map[string]string   // uid/name -> image
	served  map[string][]string // uid/container -> its image volumes' mount paths
}

func (v *imageVolumes) ImageMounted(pod *corev1.Pod, name string) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.mounted[string(pod.UID)+"/"+name]
	return ok, nil
}

func (v *imageVolumes) MountImage(_ context.Context, pod *corev1.Pod, name, image string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if strings.Contains(image, "broken") {
		return errors.New("image volume " + name + ": mount failed")
	}
	v.mounted[string(pod.UID)+"/"+name] = image
	return nil
}

func (v *imageVolumes) image(uid types.UID, name string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mounted[string(uid)+"/"+name]
}

func (v *imageVolumes) Mounts(pod *corev1.Pod, c *corev1.Container, _ map[string]string) ([]*runtimeapi.Mount, error) {
	images := map[string]bool{}
	for _, vol := range pod.Spec.Volumes {
		images[vol.Name] = vol.Image != nil
	}
	var out []*runtimeapi.Mount
	for _, vm := range c.VolumeMounts {
		if !images[vm.Name] {
			continue // the service account token's
		}
		if v.image(pod.UID, vm.Name) == "" {
			return nil, errors.New("image volume " + vm.Name + " not mounted")
		}
		out = append(out, &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: "/images/" + vm.Name, Readonly: true})
	}
	v.mu.Lock()
	v.served[string(pod.UID)+"/"+c.Name] = nil
	for _, m := range out {
		v.served[string(pod.UID)+"/"+c.Name] = append(v.served[string(pod.UID)+"/"+c.Name], m.ContainerPath)
	}
	v.mu.Unlock()
	return out, nil
}

// startWith is start with the given volumes and image service.
func startWith(t *testing.T, vols kubelet.Volumes, images *critest.FakeImageService) *harness {
	t.Helper()
	h := &harness{t: t}
	c := framework.StartInProcess(t, framework.WithControllers())
	rt := critest.NewFakeRuntimeService()
	k, err := kubelet.New(kubelet.Config{
		NodeName: "n1", NodeIP: "127.0.0.1", Client: c.Client, Runtime: rt, Images: images,
		RootDir: t.TempDir(), Volumes: vols,
		Env: func(context.Context, *corev1.Pod, *corev1.Container, kubelet.EnvInputs) ([]*runtimeapi.KeyValue, error) {
			return nil, nil
		},
		Expand:         func(s string, _ map[string]string) string { return s },
		RelistPeriod:   50 * time.Millisecond,
		SyncPeriod:     200 * time.Millisecond,
		BackoffInitial: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.c, h.rt, h.ctx, h.stopped = c, rt, ctx, make(chan struct{})
	go func() { defer close(h.stopped); _ = k.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-h.stopped })
	return h
}

// Image volumes are pulled as their pullPolicy says before a container
// that mounts them is created, once per pod; a failed pull holds back
// only the containers that mount the volume, with the pull's waiting
// reason.
func TestKubeletImageVolumes(t *testing.T) {
	images := critest.NewFakeImageService()
	images.SetFakeImages([]string{"busybox:1.36", "example.com/data:1"})
	vols := &imageVolumes{mounted: map[string]string{}, served: map[string][]string{}}
	h := startWith(t, vols, images)

	pulls := func() int {
		images.Lock()
		defer images.Unlock()
		n := 0
		for _, c := range images.Called {
			if c == "PullImage" {
				n++
			}
		}
		return n
	}
	createPod := func(name string, vs []corev1.Volume, cs ...corev1.Container) *corev1.Pod {
		t.Helper()
		p, err := h.c.Client.CoreV1().Pods("default").Create(h.ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: "n1", TerminationGracePeriodSeconds: ptr.To(int64(1)),
				Volumes: vs, Containers: cs,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	imageVolume := func(name, ref string, policy corev1.PullPolicy) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: ref, PullPolicy: policy}}}
	}
	container := func(name string, mounts ...string) corev1.Container {
		c := corev1.Container{Name: name, Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent}
		for _, m := range mounts {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m, MountPath: "/" + m})
		}
		return c
	}
	status := func(p *corev1.Pod, name string) corev1.ContainerStatus {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == name {
				return cs
			}
		}
		return corev1.ContainerStatus{}
	}

	t.Run("pull policy Always pulls once per pod and mounts the pulled image", func(t *testing.T) {
		before := pulls()
		pod := createPod("always", []corev1.Volume{imageVolume("data", "example.com/data:1", corev1.PullAlways)}, container("c", "data"))
		h.waitStatus("always", "Running", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodRunning && running(status(p, "c"))
		})
		if got := vols.image(pod.UID, "data"); got != "example.com/data:1" {
			t.Errorf("mounted image %q, want the pulled image's ID", got)
		}
		time.Sleep(600 * time.Millisecond) // some resyncs: no further pull
		if n := pulls() - before; n != 1 {
			t.Errorf("%d pulls, want 1 (resolved once per pod)", n)
		}
		vols.mu.Lock()
		defer vols.mu.Unlock()
		if got := vols.served[string(pod.UID)+"/c"]; len(got) != 1 || got[0] != "/data" {
			t.Errorf("the container's image volume mounts: %v, want /data", got)
		}
	})

	t.Run("IfNotPresent uses a present image without pulling", func(t *testing.T) {
		before := pulls()
		pod := createPod("present", []corev1.Volume{imageVolume("data", "example.com/data:1", corev1.PullIfNotPresent)}, container("c", "data"))
		h.waitStatus("present", "Running", func(p *corev1.Pod) bool { return running(status(p, "c")) })
		if n := pulls() - before; n != 0 {
			t.Errorf("%d pulls, want 0", n)
		}
		if got := vols.image(pod.UID, "data"); got != "example.com/data:1" {
			t.Errorf("mounted image %q", got)
		}
	})

	t.Run("Never with a missing image holds back only the containers that mount it", func(t *testing.T) {
		createPod("never", []corev1.Volume{imageVolume("data", "example.com/missing:1", corev1.PullNever)},
			container("mounts", "data"), container("plain"))
		p := h.waitStatus("never", "ErrImageNeverPull", func(p *corev1.Pod) bool {
			return waitingFor(status(p, "mounts")) == "ErrImageNeverPull" && running(status(p, "plain"))
		})
		if msg := status(p, "mounts").State.Waiting.Message; !strings.Contains(msg, `"example.com/missing:1" is not present with pull policy of Never`) {
			t.Errorf("waiting message %q", msg)
		}
	})

	t.Run("a failed mount is CreateContainerError on the container", func(t *testing.T) {
		createPod("broken", []corev1.Volume{imageVolume("data", "example.com/broken:1", corev1.PullAlways)}, container("c", "data"))
		p := h.waitStatus("broken", "CreateContainerError", func(p *corev1.Pod) bool {
			return waitingFor(status(p, "c")) == "CreateContainerError"
		})
		if msg := status(p, "c").State.Waiting.Message; msg != "image volume data: mount failed" {
			t.Errorf("waiting message %q", msg)
		}
	})

	t.Run("a failed pull is ErrImagePull on the container", func(t *testing.T) {
		images.InjectError("PullImage", errors.New("registry unreachable"))
		createPod("fails", []corev1.Volume{imageVolume("data", "example.com/gone:1", corev1.PullAlways)}, container("c", "data"))
		p := h.waitStatus("fails", "ErrImagePull", func(p *corev1.Pod) bool {
			w := waitingFor(status(p, "c"))
			return w == "ErrImagePull" || w == "ImagePullBackOff"
		})
		if cs := status(p, "c"); cs.State.Waiting.Reason == "ErrImagePull" && !strings.Contains(cs.State.Waiting.Message, `Failed to pull image "example.com/gone:1": `) {
			t.Errorf("waiting message %q", cs.State.Waiting.Message)
		}
	})
}
