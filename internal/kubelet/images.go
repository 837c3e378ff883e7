package kubelet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageInfo is a pulled image: the runtime's reference and the numeric
// user it runs as (0 when it names none; nil when it names a user by name).
type imageInfo struct {
	ref string
	uid *int64
}

// ensureImage makes c's image present as its imagePullPolicy says, with
// upstream's events (Pulling, Pulled, Failed, BackOff) and waiting reasons
// (ErrImagePull, ImagePullBackOff, ErrImageNeverPull, InvalidImageName).
func (k *Kubelet) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sbCfg *runtimeapi.PodSandboxConfig) (imageInfo, error) {
	key := waitKey(pod.UID, c.Name)
	return k.pullImage(ctx, pod, pullRequest{image: c.Image, policy: c.ImagePullPolicy, waitKey: key, backoffKey: "pull/" + key}, sbCfg)
}

// pullRequest is an image to make present: a container's, or an image
// volume's (imagevolume.go), which upstream pulls with the same code and
// words.
type pullRequest struct {
	image  string
	policy corev1.PullPolicy
	// waitKey is the container whose waiting state shows the pull's
	// failures; backoffKey keys the pull's back-off.
	waitKey, backoffKey string
}

// pullImage makes req's image present as its pull policy says; see
// ensureImage.
func (k *Kubelet) pullImage(ctx context.Context, pod *corev1.Pod, req pullRequest, sbCfg *runtimeapi.PodSandboxConfig) (imageInfo, error) {
	key, image := req.waitKey, req.image
	if image == "" || strings.ContainsAny(image, " \t") {
		k.setWaiting(key, "InvalidImageName", fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: invalid reference format", image, image))
		return imageInfo{}, errWaiting
	}
	spec := &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: image}
	st, err := k.cfg.Images.ImageStatus(ctx, spec, false)
	if err != nil {
		return imageInfo{}, fmt.Errorf("image status of %q: %w", image, err)
	}
	present := st != nil && st.Image != nil
	policy := req.policy
	if policy == "" {
		policy = corev1.PullIfNotPresent
	}
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", image)
		k.setWaiting(key, "ErrImageNeverPull", msg)
		k.recorder.Event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
		k.queue.AddAfter(pod.UID, 5*time.Second)
		return imageInfo{}, errWaiting
	case present && policy != corev1.PullAlways:
		k.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", image)
		return infoOf(st.Image), nil
	}
	backoffKey := req.backoffKey
	failedAt := k.pullFailedAt(backoffKey)
	if left := k.backoff.remaining(backoffKey, failedAt); left > 0 {
		// A failed pull stays ErrImagePull, whose message says why it
		// failed, for the first half of its back-off; ImagePullBackOff
		// only after. Upstream's pod worker next syncs a pod some seconds
		// after a failed pull, so both reasons show in turn; here the
		// status write of the failure re-syncs the pod at once and would
		// replace ErrImagePull within milliseconds.
		if shown := k.backoff.current(backoffKey)/2 - time.Since(failedAt); shown > 0 {
			k.queue.AddAfter(pod.UID, shown)
			return imageInfo{}, errWaiting
		}
		k.setWaiting(key, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", image))
		k.recorder.Eventf(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", image)
		k.queue.AddAfter(pod.UID, left)
		return imageInfo{}, errWaiting
	}
	k.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", image)
	start := time.Now()
	auths, err := k.pullAuths(ctx, pod, image)
	if err != nil {
		return imageInfo{}, err
	}
	var ref string
	for _, auth := range auths {
		if ref, err = k.cfg.Images.PullImage(ctx, spec, auth, sbCfg); err == nil {
			break
		}
	}
	if err != nil {
		now := time.Now()
		k.setPullFailed(backoffKey, now)
		k.backoff.next(backoffKey, now, now)
		msg := fmt.Sprintf("Failed to pull image %q: %v", image, err)
		k.setWaiting(key, "ErrImagePull", msg)
		k.recorder.Event(pod, corev1.EventTypeWarning, "Failed", msg)
		k.recorder.Event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		k.queue.AddAfter(pod.UID, k.backoff.current(backoffKey))
		return imageInfo{}, errWaiting
	}
	k.backoff.forget(backoffKey)
	k.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", image, time.Since(start).Round(time.Millisecond))
	st, err = k.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false)
	if err != nil || st == nil || st.Image == nil {
		return imageInfo{ref: ref}, nil
	}
	return infoOf(st.Image), nil
}

func infoOf(img *runtimeapi.Image) imageInfo {
	info := imageInfo{ref: img.Id}
	switch {
	case img.Uid != nil:
		uid := img.Uid.Value
		info.uid = &uid
	case img.Username == "" || img.Username == "root":
		var root int64
		info.uid = &root
	}
	return info
}

func (k *Kubelet) pullFailedAt(key string) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pullFailed[key]
}

func (k *Kubelet) setPullFailed(key string, at time.Time) {
	k.mu.Lock()
	k.pullFailed[key] = at
	k.mu.Unlock()
}

// pullAuths are the credentials to try for image, from the pod's
// imagePullSecrets (dockerconfigjson or dockercfg) whose registry matches;
// an anonymous pull is tried last, as upstream does.
func (k *Kubelet) pullAuths(ctx context.Context, pod *corev1.Pod, image string) ([]*runtimeapi.AuthConfig, error) {
	registry := registryOf(image)
	var out []*runtimeapi.AuthConfig
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := k.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			k.log.Warn("image pull secret", "pod", klogRef(pod), "secret", ref.Name, "err", err)
			continue
		}
		for host, a := range dockerAuths(s) {
			if registryMatches(host, registry) {
				out = append(out, a)
			}
		}
	}
	return append(out, nil), nil
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

func dockerAuths(s *corev1.Secret) map[string]*runtimeapi.AuthConfig {
	entries := map[string]dockerAuth{}
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg) == nil {
			entries = cfg.Auths
		}
	case corev1.SecretTypeDockercfg:
		_ = json.Unmarshal(s.Data[corev1.DockerConfigKey], &entries)
	}
	out := map[string]*runtimeapi.AuthConfig{}
	for host, e := range entries {
		a := &runtimeapi.AuthConfig{Username: e.Username, Password: e.Password, Auth: e.Auth}
		if a.Username == "" && e.Auth != "" {
			if raw, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
				if u, p, ok := strings.Cut(string(raw), ":"); ok {
					a.Username, a.Password = u, p
				}
			}
		}
		out[host] = a
	}
	return out
}

// registryOf is the registry host of an image reference, "docker.io" for
// short names as the runtime normalises them.
func registryOf(image string) string {
	first, _, found := strings.Cut(image, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	return first
}

// registryMatches compares a credential's key ("https://host/v1/", "host")
// with a registry host.
func registryMatches(key, registry string) bool {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	if key == "index.docker.io" || key == "registry-1.docker.io" {
		key = "docker.io"
	}
	return key == registry
}
