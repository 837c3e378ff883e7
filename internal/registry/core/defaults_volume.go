package core

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// defaultVolumeMode is the mode of secret, configMap, downwardAPI and
// projected volume files when none is given (0644).
const defaultVolumeMode int32 = 0o644

// defaultServiceAccountTokenExpirationSeconds is the lifetime of a
// projected service account token when none is given (one hour).
const defaultServiceAccountTokenExpirationSeconds int64 = 60 * 60

// defaultVolume fills in a pod volume's defaults as upstream does: a volume
// with no source is an emptyDir, file modes are 0644, and each legacy
// in-tree source gets its documented defaults.
func defaultVolume(v *corev1.Volume) {
	s := &v.VolumeSource
	if (*s == corev1.VolumeSource{}) {
		s.EmptyDir = &corev1.EmptyDirVolumeSource{}
		return
	}
	if s.HostPath != nil && s.HostPath.Type == nil {
		t := corev1.HostPathUnset
		s.HostPath.Type = &t
	}
	if s.Secret != nil && s.Secret.DefaultMode == nil {
		s.Secret.DefaultMode = ptr.To(defaultVolumeMode)
	}
	if s.ConfigMap != nil && s.ConfigMap.DefaultMode == nil {
		s.ConfigMap.DefaultMode = ptr.To(defaultVolumeMode)
	}
	if s.DownwardAPI != nil {
		if s.DownwardAPI.DefaultMode == nil {
			s.DownwardAPI.DefaultMode = ptr.To(defaultVolumeMode)
		}
		defaultDownwardAPIFiles(s.DownwardAPI.Items)
	}
	if s.Projected != nil {
		if s.Projected.DefaultMode == nil {
			s.Projected.DefaultMode = ptr.To(defaultVolumeMode)
		}
		for i := range s.Projected.Sources {
			src := &s.Projected.Sources[i]
			if src.DownwardAPI != nil {
				defaultDownwardAPIFiles(src.DownwardAPI.Items)
			}
			if src.ServiceAccountToken != nil && src.ServiceAccountToken.ExpirationSeconds == nil {
				src.ServiceAccountToken.ExpirationSeconds = ptr.To(defaultServiceAccountTokenExpirationSeconds)
			}
		}
	}
	if s.ISCSI != nil && s.ISCSI.ISCSIInterface == "" {
		s.ISCSI.ISCSIInterface = "default"
	}
	if s.RBD != nil {
		if s.RBD.RBDPool == "" {
			s.RBD.RBDPool = "rbd"
		}
		if s.RBD.RadosUser == "" {
			s.RBD.RadosUser = "admin"
		}
		if s.RBD.Keyring == "" {
			s.RBD.Keyring = "/etc/ceph/keyring"
		}
	}
	if s.AzureDisk != nil {
		if s.AzureDisk.CachingMode == nil {
			m := corev1.AzureDataDiskCachingReadWrite
			s.AzureDisk.CachingMode = &m
		}
		if s.AzureDisk.Kind == nil {
			k := corev1.AzureSharedBlobDisk
			s.AzureDisk.Kind = &k
		}
		if s.AzureDisk.FSType == nil {
			s.AzureDisk.FSType = ptr.To("ext4")
		}
		if s.AzureDisk.ReadOnly == nil {
			s.AzureDisk.ReadOnly = ptr.To(false)
		}
	}
	if s.ScaleIO != nil {
		if s.ScaleIO.StorageMode == "" {
			s.ScaleIO.StorageMode = "ThinProvisioned"
		}
		if s.ScaleIO.FSType == "" {
			s.ScaleIO.FSType = "xfs"
		}
	}
	if s.Ephemeral != nil && s.Ephemeral.VolumeClaimTemplate != nil {
		spec := &s.Ephemeral.VolumeClaimTemplate.Spec
		if spec.VolumeMode == nil {
			m := corev1.PersistentVolumeFilesystem
			spec.VolumeMode = &m
		}
		defaultResourceList(spec.Resources.Limits)
		defaultResourceList(spec.Resources.Requests)
	}
	if s.Image != nil && s.Image.PullPolicy == "" {
		s.Image.PullPolicy = pullPolicyForImage(s.Image.Reference)
	}
}

func defaultDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if f := items[i].FieldRef; f != nil && f.APIVersion == "" {
			f.APIVersion = "v1"
		}
	}
}
