package persistentvolume

// Event reasons, upstream's (pkg/controller/volume/events).
const (
	reasonFailedBinding        = "FailedBinding"
	reasonVolumeMismatch       = "VolumeMismatch"
	reasonWaitForFirstConsumer = "WaitForFirstConsumer"
	reasonWaitForPodScheduled  = "WaitForPodScheduled"
	reasonExternalProvisioning = "ExternalProvisioning"
	reasonProvisioningFailed   = "ProvisioningFailed"
	reasonClaimLost            = "ClaimLost"
	reasonClaimMisbound        = "ClaimMisbound"
	reasonVolumeFailedDelete   = "VolumeFailedDelete"
	reasonVolumeFailedRecycle  = "VolumeFailedRecycle"
	reasonUnknownReclaimPolicy = "VolumeUnknownReclaimPolicy"
)

// Annotations the binder reads that component-helpers does not name.
const (
	// annPreResizeCapacity on a volume is the capacity its claim reported
	// before a resize that still needs the file system grown.
	annPreResizeCapacity = "volume.alpha.kubernetes.io/pre-resize-capacity"
	// annIsDefaultClass and its beta form mark a default StorageClass.
	annIsDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	annBetaIsDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
)
