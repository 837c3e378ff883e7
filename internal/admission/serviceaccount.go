package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
)

// ServiceAccount completes a new pod's service account as upstream's
// ServiceAccount admission plugin does: spec.serviceAccountName defaults to
// "default"; a named account that does not exist rejects the pod (403, as
// upstream); the account's imagePullSecrets are copied to a pod that has
// none; and unless the pod or the account turns automountServiceAccountToken
// off, every container and init container mounts a projected
// kube-api-access-<random> volume at /var/run/secrets/kubernetes.io/serviceaccount
// holding a bound token (refreshed by the kubelet), the cluster CA
// (configMap kube-root-ca.crt) and the pod's namespace, which is what
// client-go's in-cluster configuration reads.
//
// One difference: a missing "default" account does not reject the pod
// (upstream rejects it until the serviceaccount controller has created the
// account); the pod is admitted and its token is requested when the
// kubelet starts it (docs/compatibility.md).
type ServiceAccount struct {
	// Accounts is the serviceaccounts store and Key its key function.
	Accounts storage.Interface
	Key      func(namespace, name string) string
}

const (
	// TokenMountPath is where every container finds its service account
	// token, CA and namespace.
	TokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// tokenVolumePrefix starts the name of the volume the plugin adds; a
	// pod that already has a volume so named keeps it.
	tokenVolumePrefix = "kube-api-access-"
	// tokenExpirationSeconds is upstream's: a little over an hour, which
	// the kubelet refreshes at 80 % of its life.
	tokenExpirationSeconds = 3607
	rootCAConfigMap        = "kube-root-ca.crt"
)

func (a *ServiceAccount) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Operation != apiserver.Create || req.Resource.GroupVersion.Group != "" || req.Resource.Name != "pods" || req.Sub != "" {
		return nil
	}
	pod, ok := req.Obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	sa, err := a.account(ctx, req.Namespace, pod.Spec.ServiceAccountName)
	if errors.Is(err, storage.ErrNotFound) {
		return apierrors.NewForbidden(podsGR, pod.Name, fmt.Errorf("error looking up service account %s/%s: %w",
			req.Namespace, pod.Spec.ServiceAccountName, apierrors.NewNotFound(corev1.Resource("serviceaccount"), pod.Spec.ServiceAccountName)))
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("service account %s/%s: %w", req.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if sa != nil && len(pod.Spec.ImagePullSecrets) == 0 {
		for _, s := range sa.ImagePullSecrets {
			pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s.Name})
		}
	}
	if automount(pod, sa) {
		mountToken(pod)
	}
	return nil
}

// account reads the named ServiceAccount (from the watch cache, then from
// etcd before calling it missing: storage.ErrNotFound). A missing
// "default" is nil, not an error.
func (a *ServiceAccount) account(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	if a.Accounts == nil {
		return nil, nil
	}
	sa := &corev1.ServiceAccount{}
	err := a.Accounts.Get(ctx, a.Key(namespace, name), "0", sa)
	if errors.Is(err, storage.ErrNotFound) {
		err = a.Accounts.Get(ctx, a.Key(namespace, name), "", sa)
	}
	switch {
	case err == nil:
		return sa, nil
	case errors.Is(err, storage.ErrNotFound) && name == "default":
		return nil, nil
	default:
		return nil, err
	}
}

// automount reports whether pod gets a token: the pod's own setting wins
// over its account's; both unset means yes.
func automount(pod *corev1.Pod, sa *corev1.ServiceAccount) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa != nil && sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountToken mounts the token volume in every container and init
// container that has nothing mounted at TokenMountPath, adding the volume
// if one of them needs it and the pod has none yet.
func mountToken(pod *corev1.Pod) {
	name := ""
	names := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		names[v.Name] = true
		if name == "" && strings.HasPrefix(v.Name, tokenVolumePrefix) {
			name = v.Name
		}
	}
	haveVolume := name != ""
	for !haveVolume && (name == "" || names[name]) {
		name = tokenVolumePrefix + utilrand.String(5)
	}
	needed := false
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if mountsAt(list[i], TokenMountPath) {
				continue
			}
			list[i].VolumeMounts = append(list[i].VolumeMounts, corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: TokenMountPath})
			needed = true
		}
	}
	if needed && !haveVolume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, tokenVolume(name))
	}
}

func mountsAt(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

func tokenVolume(name string) corev1.Volume {
	expiration, mode := int64(tokenExpirationSeconds), int32(0o644)
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiration}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}}}
}
