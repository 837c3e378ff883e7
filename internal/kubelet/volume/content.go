package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// configMapVolumePayload fetches a configMap volume's ConfigMap and turns it
// into files. A missing optional ConfigMap gives an empty volume.
func (m *Manager) configMapVolumePayload(ctx context.Context, pod *v1.Pod, src *v1.ConfigMapVolumeSource) (map[string]fileProjection, error) {
	optional := src.Optional != nil && *src.Optional
	cm, err := m.configMapOrEmpty(ctx, pod.Namespace, src.Name, optional)
	if err != nil {
		return nil, err
	}
	return configMapPayload(src.Items, cm, modeOr(src.DefaultMode), optional)
}

// secretVolumePayload is configMapVolumePayload for secrets.
func (m *Manager) secretVolumePayload(ctx context.Context, pod *v1.Pod, src *v1.SecretVolumeSource) (map[string]fileProjection, error) {
	optional := src.Optional != nil && *src.Optional
	s, err := m.secretOrEmpty(ctx, pod.Namespace, src.SecretName, optional)
	if err != nil {
		return nil, err
	}
	return secretPayload(src.Items, s, modeOr(src.DefaultMode), optional)
}

func (m *Manager) configMapOrEmpty(ctx context.Context, namespace, name string, optional bool) (*v1.ConfigMap, error) {
	cm, err := GetConfigMap(ctx, m.src, namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return &v1.ConfigMap{}, nil
		}
		return nil, err
	}
	return cm, nil
}

func (m *Manager) secretOrEmpty(ctx context.Context, namespace, name string, optional bool) (*v1.Secret, error) {
	s, err := GetSecret(ctx, m.src, namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return &v1.Secret{}, nil
		}
		return nil, err
	}
	return s, nil
}

// configMapPayload maps a ConfigMap's keys (data and binaryData) to files:
// every key with defaultMode, or only the listed items at their paths and
// modes. A listed key that is missing fails unless optional.
func configMapPayload(items []v1.KeyToPath, cm *v1.ConfigMap, defaultMode os.FileMode, optional bool) (map[string]fileProjection, error) {
	payload := map[string]fileProjection{}
	if len(items) == 0 {
		for k, d := range cm.Data {
			payload[k] = fileProjection{Data: []byte(d), Mode: defaultMode}
		}
		for k, d := range cm.BinaryData {
			payload[k] = fileProjection{Data: d, Mode: defaultMode}
		}
		return payload, nil
	}
	for _, it := range items {
		var data []byte
		if d, ok := cm.Data[it.Key]; ok {
			data = []byte(d)
		} else if d, ok := cm.BinaryData[it.Key]; ok {
			data = d
		} else {
			if optional {
				continue
			}
			return nil, fmt.Errorf("configmap references non-existent config key: %s", it.Key)
		}
		payload[it.Path] = fileProjection{Data: data, Mode: itemMode(it.Mode, defaultMode)}
	}
	return payload, nil
}

// secretPayload is configMapPayload for a Secret's data.
func secretPayload(items []v1.KeyToPath, s *v1.Secret, defaultMode os.FileMode, optional bool) (map[string]fileProjection, error) {
	payload := map[string]fileProjection{}
	if len(items) == 0 {
		for k, d := range s.Data {
			payload[k] = fileProjection{Data: d, Mode: defaultMode}
		}
		return payload, nil
	}
	for _, it := range items {
		d, ok := s.Data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", it.Key)
		}
		payload[it.Path] = fileProjection{Data: d, Mode: itemMode(it.Mode, defaultMode)}
	}
	return payload, nil
}

func itemMode(mode *int32, defaultMode os.FileMode) os.FileMode {
	if mode != nil {
		return os.FileMode(*mode) & os.ModePerm
	}
	return defaultMode
}

// downwardAPIPayload renders downward API items: pod metadata fields and
// container resources (limits default to node allocatable).
func (m *Manager) downwardAPIPayload(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, defaultMode os.FileMode) (map[string]fileProjection, error) {
	payload := map[string]fileProjection{}
	var errs []error
	for _, it := range items {
		var (
			val string
			err error
		)
		switch {
		case it.FieldRef != nil:
			if it.FieldRef.APIVersion != "" && it.FieldRef.APIVersion != "v1" {
				err = fmt.Errorf("unsupported pod version: %s", it.FieldRef.APIVersion)
			} else {
				val, err = PodFieldValue(pod, it.FieldRef.FieldPath)
			}
		case it.ResourceFieldRef != nil:
			val, err = ContainerResourceValue(it.ResourceFieldRef, pod, nil, m.nodeAllocatable())
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		payload[filepath.Clean(it.Path)] = fileProjection{Data: []byte(val), Mode: itemMode(it.Mode, defaultMode)}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return payload, nil
}

// projectedPayload merges a projected volume's sources in order (a later
// source wins a path). Any failing source fails the whole volume, which is
// then left as it was, as upstream does.
func (m *Manager) projectedPayload(ctx context.Context, pod *v1.Pod, v *v1.Volume) (map[string]fileProjection, error) {
	defaultMode := modeOr(v.Projected.DefaultMode)
	payload := map[string]fileProjection{}
	var errs []error
	merge := func(p map[string]fileProjection, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for k, f := range p {
			payload[k] = f
		}
	}
	for i, s := range v.Projected.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			cm, err := m.configMapOrEmpty(ctx, pod.Namespace, s.ConfigMap.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(configMapPayload(s.ConfigMap.Items, cm, defaultMode, optional))
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			sec, err := m.secretOrEmpty(ctx, pod.Namespace, s.Secret.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			merge(secretPayload(s.Secret.Items, sec, defaultMode, optional))
		case s.DownwardAPI != nil:
			merge(m.downwardAPIPayload(pod, s.DownwardAPI.Items, defaultMode))
		case s.ServiceAccountToken != nil:
			tok, err := m.token(ctx, pod, v.Name, s.ServiceAccountToken)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			payload[s.ServiceAccountToken.Path] = fileProjection{Data: []byte(tok), Mode: ownedFileMode(pod, defaultMode)}
		case s.ClusterTrustBundle != nil:
			anchors, err := m.trustAnchors(ctx, s.ClusterTrustBundle)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			payload[s.ClusterTrustBundle.Path] = fileProjection{Data: anchors, Mode: ownedFileMode(pod, defaultMode)}
		case s.PodCertificate != nil:
			merge(m.podCertificatePayload(ctx, pod, v.Name, i, s.PodCertificate, defaultMode))
		default:
			errs = append(errs, fmt.Errorf("projected source %d: no known source set (not supported by skiff)", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return payload, nil
}

// ownedFileMode is the mode of a token or trust anchors file of a
// projected volume: defaultMode, or 0600 when the pod has an fsGroup,
// which the group's read bit then widens to 0640, as upstream.
// (Upstream also uses 0600, and makes the file the user's, when every
// container runs as one user; skiff does not.)
func ownedFileMode(pod *v1.Pod, defaultMode os.FileMode) os.FileMode {
	if fsGroupOf(pod) != nil {
		return 0o600
	}
	return defaultMode
}
