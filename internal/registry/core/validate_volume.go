package core

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	volumeModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"
	maxVolumeMode      = 0o777
)

// validateVolumes checks a pod's volumes: DNS-label names, unique, exactly
// one source each. It returns the valid volumes by name, for the volume
// mounts to refer to.
func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	byName := map[string]corev1.VolumeSource{}
	created := sets.New[string]()
	if podMeta != nil && podMeta.Name != "" {
		for _, v := range volumes {
			if v.Ephemeral != nil {
				created.Insert(podMeta.Name + "-" + v.Name)
			}
		}
	}
	for i := range volumes {
		v := &volumes[i]
		p := fldPath.Index(i)
		el := validateVolumeSource(&v.VolumeSource, v.Name, podMeta, p)
		if v.Name == "" {
			el = append(el, field.Required(p.Child("name"), ""))
		} else {
			el = append(el, dnsLabelErrs(v.Name, p.Child("name"))...)
		}
		if _, dup := byName[v.Name]; dup {
			el = append(el, field.Duplicate(p.Child("name"), v.Name))
		}
		if len(el) == 0 {
			byName[v.Name] = v.VolumeSource
		} else {
			errs = append(errs, el...)
		}
		if v.PersistentVolumeClaim != nil && created.Has(v.PersistentVolumeClaim.ClaimName) {
			errs = append(errs, field.Invalid(p.Child("persistentVolumeClaim", "claimName"), v.PersistentVolumeClaim.ClaimName,
				"must not reference a PVC that gets created for an ephemeral volume"))
		}
	}
	return byName, errs
}

// validateVolumeSource requires exactly one source and checks the sources
// skiff's kubelet can mount (and the common fields of the rest).
func validateVolumeSource(s *corev1.VolumeSource, volName string, podMeta *metav1.ObjectMeta, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	// one returns whether this source is the first one seen; a second
	// source is an error.
	one := func(name string) bool {
		if n > 0 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 volume type"))
			return false
		}
		n++
		return true
	}
	if s.EmptyDir != nil && one("emptyDir") {
		if s.EmptyDir.SizeLimit != nil && s.EmptyDir.SizeLimit.Sign() < 0 {
			errs = append(errs, field.Forbidden(p.Child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity"))
		}
		switch s.EmptyDir.Medium {
		case corev1.StorageMediumDefault, corev1.StorageMediumMemory, corev1.StorageMediumHugePages:
		default:
			if !strings.HasPrefix(string(s.EmptyDir.Medium), string(corev1.StorageMediumHugePagesPrefix)) {
				errs = append(errs, field.NotSupported(p.Child("emptyDir", "medium"), s.EmptyDir.Medium,
					[]corev1.StorageMedium{corev1.StorageMediumDefault, corev1.StorageMediumMemory, corev1.StorageMediumHugePages}))
			}
		}
	}
	if s.HostPath != nil && one("hostPath") {
		hp := p.Child("hostPath")
		if s.HostPath.Path == "" {
			errs = append(errs, field.Required(hp.Child("path"), ""))
		} else {
			errs = append(errs, validatePathNoBacksteps(s.HostPath.Path, hp.Child("path"))...)
			errs = append(errs, validateHostPathType(s.HostPath.Type, hp.Child("type"))...)
		}
	}
	if s.GitRepo != nil && one("gitRepo") {
		if s.GitRepo.Repository == "" {
			errs = append(errs, field.Required(p.Child("gitRepo", "repository"), ""))
		}
		errs = append(errs, validateLocalDescendingPath(s.GitRepo.Directory, p.Child("gitRepo", "directory"))...)
	}
	if s.GCEPersistentDisk != nil && one("gcePersistentDisk") && s.GCEPersistentDisk.PDName == "" {
		errs = append(errs, field.Required(p.Child("persistentDisk", "pdName"), ""))
	}
	if s.AWSElasticBlockStore != nil && one("awsElasticBlockStore") && s.AWSElasticBlockStore.VolumeID == "" {
		errs = append(errs, field.Required(p.Child("awsElasticBlockStore", "volumeID"), ""))
	}
	if s.Secret != nil && one("secret") {
		sp := p.Child("secret")
		if s.Secret.SecretName == "" {
			errs = append(errs, field.Required(sp.Child("secretName"), ""))
		}
		errs = append(errs, validateVolumeMode(s.Secret.DefaultMode, sp.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(s.Secret.Items, sp.Child("items"))...)
	}
	if s.NFS != nil && one("nfs") {
		np := p.Child("nfs")
		if s.NFS.Server == "" {
			errs = append(errs, field.Required(np.Child("server"), ""))
		}
		if s.NFS.Path == "" {
			errs = append(errs, field.Required(np.Child("path"), ""))
		} else if !path.IsAbs(s.NFS.Path) {
			errs = append(errs, field.Invalid(np.Child("path"), s.NFS.Path, "must be an absolute path"))
		}
	}
	if s.ISCSI != nil && one("iscsi") {
		if s.ISCSI.TargetPortal == "" {
			errs = append(errs, field.Required(p.Child("iscsi", "targetPortal"), ""))
		}
		if s.ISCSI.IQN == "" {
			errs = append(errs, field.Required(p.Child("iscsi", "iqn"), ""))
		}
	}
	if s.Glusterfs != nil && one("glusterfs") {
		if s.Glusterfs.EndpointsName == "" {
			errs = append(errs, field.Required(p.Child("glusterfs", "endpoints"), ""))
		}
		if s.Glusterfs.Path == "" {
			errs = append(errs, field.Required(p.Child("glusterfs", "path"), ""))
		}
	}
	if s.Flocker != nil {
		one("flocker")
	}
	if s.PersistentVolumeClaim != nil && one("persistentVolumeClaim") && s.PersistentVolumeClaim.ClaimName == "" {
		errs = append(errs, field.Required(p.Child("persistentVolumeClaim", "claimName"), ""))
	}
	if s.RBD != nil {
		one("rbd")
	}
	if s.Cinder != nil && one("cinder") && s.Cinder.VolumeID == "" {
		errs = append(errs, field.Required(p.Child("cinder", "volumeID"), ""))
	}
	if s.CephFS != nil && one("cephFS") && len(s.CephFS.Monitors) == 0 {
		errs = append(errs, field.Required(p.Child("cephfs", "monitors"), ""))
	}
	if s.Quobyte != nil {
		one("quobyte")
	}
	if s.DownwardAPI != nil && one("downwarAPI") { // sic: upstream's path
		dp := p.Child("downwardAPI")
		errs = append(errs, validateVolumeMode(s.DownwardAPI.DefaultMode, dp.Child("defaultMode"))...)
		errs = append(errs, validateDownwardAPIFiles(s.DownwardAPI.Items, dp)...)
	}
	if s.FC != nil {
		one("fc")
	}
	if s.FlexVolume != nil && one("flexVolume") && s.FlexVolume.Driver == "" {
		errs = append(errs, field.Required(p.Child("flexVolume", "driver"), ""))
	}
	if s.ConfigMap != nil && one("configMap") {
		cp := p.Child("configMap")
		for _, msg := range validation.IsDNS1123Subdomain(s.ConfigMap.Name) {
			errs = append(errs, field.Invalid(cp.Child("name"), s.ConfigMap.Name, msg))
		}
		errs = append(errs, validateVolumeMode(s.ConfigMap.DefaultMode, cp.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(s.ConfigMap.Items, cp.Child("items"))...)
	}
	if s.AzureFile != nil {
		one("azureFile")
	}
	if s.VsphereVolume != nil {
		one("vsphereVolume")
	}
	if s.PhotonPersistentDisk != nil {
		one("photonPersistentDisk")
	}
	if s.PortworxVolume != nil {
		one("portworxVolume")
	}
	if s.AzureDisk != nil {
		one("azureDisk")
	}
	if s.StorageOS != nil {
		one("storageos")
	}
	if s.Projected != nil && one("projected") {
		errs = append(errs, validateProjectedVolume(s.Projected, p.Child("projected"))...)
	}
	if s.ScaleIO != nil {
		one("scaleIO")
	}
	if s.CSI != nil && one("csi") {
		if s.CSI.Driver == "" {
			errs = append(errs, field.Required(p.Child("csi", "driver"), ""))
		}
	}
	if s.Ephemeral != nil && one("ephemeral") {
		ep := p.Child("ephemeral")
		if s.Ephemeral.VolumeClaimTemplate == nil {
			errs = append(errs, field.Required(ep.Child("volumeClaimTemplate"), ""))
		} else if len(s.Ephemeral.VolumeClaimTemplate.Spec.AccessModes) == 0 {
			errs = append(errs, field.Required(ep.Child("volumeClaimTemplate", "spec", "accessModes"), "at least 1 access mode is required"))
		}
		if podMeta != nil && podMeta.Name != "" && volName != "" {
			pvc := podMeta.Name + "-" + volName
			for _, msg := range validation.IsDNS1123Subdomain(pvc) {
				errs = append(errs, field.Invalid(p.Child("name"), volName, fmt.Sprintf("PVC name %q: %v", pvc, msg)))
			}
		}
	}
	if s.Image != nil && one("image") {
		ip := p.Child("image")
		errs = append(errs, validatePullPolicy(s.Image.PullPolicy, ip.Child("pullPolicy"))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a volume type"))
	}
	return errs
}

func validateHostPathType(t *corev1.HostPathType, p *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	valid := []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
		corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev}
	for _, v := range valid {
		if *t == v {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(p, *t, valid)}
}

func validateVolumeMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode > maxVolumeMode || *mode < 0) {
		return field.ErrorList{field.Invalid(p, *mode, volumeModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, kp := range items {
		p := fldPath.Index(i)
		if kp.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		}
		if kp.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validateLocalNonReservedPath(kp.Path, p.Child("path"))...)
		errs = append(errs, validateVolumeMode(kp.Mode, p.Child("mode"))...)
	}
	return errs
}

func validateDownwardAPIFiles(files []corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range files {
		if f.Path == "" {
			errs = append(errs, field.Required(fldPath.Child("path"), ""))
		}
		errs = append(errs, validateLocalNonReservedPath(f.Path, fldPath.Child("path"))...)
		errs = append(errs, validateVolumeMode(f.Mode, fldPath.Child("mode"))...)
		switch {
		case f.FieldRef != nil && f.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(fldPath, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case f.FieldRef != nil:
			errs = append(errs, validateObjectFieldSelector(f.FieldRef, volumeFieldPaths, fldPath.Child("fieldRef"))...)
		case f.ResourceFieldRef != nil:
			errs = append(errs, validateResourceFieldSelector(f.ResourceFieldRef, true, fldPath.Child("resourceFieldRef"))...)
		default:
			errs = append(errs, field.Required(fldPath, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return errs
}

func validateProjectedVolume(pv *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateVolumeMode(pv.DefaultMode, fldPath.Child("defaultMode"))...)
	paths := sets.New[string]()
	for i, src := range pv.Sources {
		sp := fldPath.Child("sources").Index(i)
		n := 0
		var files []string
		if src.Secret != nil {
			n++
			if src.Secret.Name == "" {
				errs = append(errs, field.Required(sp.Child("secret", "name"), ""))
			}
			errs = append(errs, validateKeyToPaths(src.Secret.Items, sp.Child("secret", "items"))...)
			for _, it := range src.Secret.Items {
				files = append(files, it.Path)
			}
		}
		if src.ConfigMap != nil {
			n++
			if src.ConfigMap.Name == "" {
				errs = append(errs, field.Required(sp.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateKeyToPaths(src.ConfigMap.Items, sp.Child("configMap", "items"))...)
			for _, it := range src.ConfigMap.Items {
				files = append(files, it.Path)
			}
		}
		if src.DownwardAPI != nil {
			n++
			errs = append(errs, validateDownwardAPIFiles(src.DownwardAPI.Items, sp.Child("downwardAPI"))...)
			for _, it := range src.DownwardAPI.Items {
				files = append(files, it.Path)
			}
		}
		if src.ServiceAccountToken != nil {
			n++
			tp := sp.Child("serviceAccountToken")
			if e := src.ServiceAccountToken.ExpirationSeconds; e != nil {
				if *e < 10*60 {
					errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *e, "may not specify a duration less than 10 minutes"))
				}
				if *e > 1<<32 {
					errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *e, "may not specify a duration larger than 2^32 seconds"))
				}
			}
			if src.ServiceAccountToken.Path == "" {
				errs = append(errs, field.Required(tp.Child("path"), ""))
			} else {
				errs = append(errs, validateLocalNonReservedPath(src.ServiceAccountToken.Path, tp.Child("path"))...)
				files = append(files, src.ServiceAccountToken.Path)
			}
		}
		if src.ClusterTrustBundle != nil {
			n++
			if src.ClusterTrustBundle.Path == "" {
				errs = append(errs, field.Required(sp.Child("clusterTrustBundle", "path"), ""))
			} else {
				files = append(files, src.ClusterTrustBundle.Path)
			}
		}
		if src.PodCertificate != nil {
			n++
			el, certFiles := validatePodCertificateProjection(src.PodCertificate, sp.Child("podCertificate"))
			errs = append(errs, el...)
			files = append(files, certFiles...)
		}
		if n != 1 {
			errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
		}
		for _, f := range files {
			if f == "" {
				continue
			}
			if paths.Has(f) {
				errs = append(errs, field.Invalid(fldPath, f, "conflicting duplicate paths"))
			}
			paths.Insert(f)
		}
	}
	return errs
}

// validateVolumeMounts: each mount names a known volume, has a unique
// mount path, and its subPath stays inside the volume.
func validateVolumeMounts(mounts []corev1.VolumeMount, devices []corev1.VolumeDevice, vols map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	devNames, devPaths := sets.New[string](), sets.New[string]()
	for _, d := range devices {
		devNames.Insert(d.Name)
		devPaths.Insert(d.DevicePath)
	}
	mountPaths := sets.New[string]()
	for i, m := range mounts {
		p := fldPath.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if _, ok := vols[m.Name]; !ok {
			errs = append(errs, field.NotFound(p.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(p.Child("mountPath"), ""))
		}
		if mountPaths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths.Insert(m.MountPath)
		if devNames.Has(m.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), m.Name, "must not already exist in volumeDevices"))
		}
		if devPaths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must not already exist as a path in volumeDevices"))
		}
		if m.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(m.SubPath, fldPath.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalDescendingPath(m.SubPathExpr, fldPath.Child("subPathExpr"))...)
		}
		if m.MountPropagation != nil {
			switch *m.MountPropagation {
			case corev1.MountPropagationNone, corev1.MountPropagationHostToContainer, corev1.MountPropagationBidirectional:
			default:
				errs = append(errs, field.NotSupported(fldPath.Child("mountPropagation"), *m.MountPropagation, []corev1.MountPropagationMode{
					corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}))
			}
		}
		if m.RecursiveReadOnly != nil {
			rp := fldPath.Child("recursiveReadOnly")
			switch *m.RecursiveReadOnly {
			case corev1.RecursiveReadOnlyDisabled:
			case corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled:
				if !m.ReadOnly {
					errs = append(errs, field.Forbidden(rp, "may only be specified when readOnly is true"))
				}
			default:
				errs = append(errs, field.NotSupported(rp, *m.RecursiveReadOnly, []corev1.RecursiveReadOnlyMode{
					corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled}))
			}
		}
	}
	return errs
}

// validateVolumeDevices: raw block devices come from PVC-backed volumes.
func validateVolumeDevices(devices []corev1.VolumeDevice, mounts []corev1.VolumeMount, vols map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountNames, mountPaths := sets.New[string](), sets.New[string]()
	for _, m := range mounts {
		mountNames.Insert(m.Name)
		mountPaths.Insert(m.MountPath)
	}
	names, paths := sets.New[string](), sets.New[string]()
	for i, d := range devices {
		p := fldPath.Index(i)
		v, found := vols[d.Name]
		if d.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if names.Has(d.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), d.Name, "must be unique"))
		}
		if found && v.PersistentVolumeClaim == nil && v.Ephemeral == nil {
			errs = append(errs, field.Invalid(p.Child("name"), d.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if !found {
			errs = append(errs, field.NotFound(p.Child("name"), d.Name))
		}
		if d.DevicePath == "" {
			errs = append(errs, field.Required(p.Child("devicePath"), ""))
		}
		if paths.Has(d.DevicePath) {
			errs = append(errs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must be unique"))
		}
		if d.DevicePath != "" && len(validatePathNoBacksteps(d.DevicePath, p.Child("devicePath"))) > 0 {
			errs = append(errs, field.Invalid(p.Child("devicePath"), d.DevicePath, "can not contain backsteps ('..')"))
		} else {
			paths.Insert(d.DevicePath)
		}
		if mountNames.Has(d.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), d.Name, "must not already exist in volumeMounts"))
		}
		if mountPaths.Has(d.DevicePath) {
			errs = append(errs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must not already exist as a path in volumeMounts"))
		}
		if d.Name != "" {
			names.Insert(d.Name)
		}
	}
	return errs
}

// validatePodResourceClaims checks spec.resourceClaims and returns their
// names, which container resources.claims may refer to.
func validatePodResourceClaims(claims []corev1.PodResourceClaim, fldPath *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, c := range claims {
		p := fldPath.Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case names.Has(c.Name):
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		default:
			errs = append(errs, dnsLabelErrs(c.Name, p.Child("name"))...)
			names.Insert(c.Name)
		}
		if c.ResourceClaimName != nil && c.ResourceClaimTemplateName != nil {
			errs = append(errs, field.Invalid(p, c, "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified"))
		}
		if c.ResourceClaimName == nil && c.ResourceClaimTemplateName == nil {
			errs = append(errs, field.Invalid(p, c, "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`"))
		}
	}
	return names, errs
}

// validatePathNoBacksteps rejects a path with a ".." element.
func validatePathNoBacksteps(target string, p *field.Path) field.ErrorList {
	for _, item := range strings.Split(filepath.ToSlash(target), "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(p, target, "must not contain '..'")}
		}
	}
	return nil
}

// validateLocalDescendingPath: relative, and no "..".
func validateLocalDescendingPath(target string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(target) || strings.HasPrefix(target, "/") {
		errs = append(errs, field.Invalid(p, target, "must be a relative path"))
	}
	return append(errs, validatePathNoBacksteps(target, p)...)
}

// validateLocalNonReservedPath: a descending path not starting with "..".
func validateLocalNonReservedPath(target string, p *field.Path) field.ErrorList {
	errs := validateLocalDescendingPath(target, p)
	if strings.HasPrefix(target, "..") && !strings.HasPrefix(target, "../") {
		errs = append(errs, field.Invalid(p, target, "must not start with '..'"))
	}
	return errs
}
