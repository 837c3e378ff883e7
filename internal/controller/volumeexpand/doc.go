// Package volumeexpand grows the PersistentVolumes of skiff's own
// provisioners when their claims ask for more: the work upstream splits
// between kube-controller-manager's expand controller
// (pkg/controller/volume/expand) and a CSI driver's external-resizer.
//
// A claim is expanded when it is Bound, its spec.resources.requests.storage
// is above its status.capacity, and its volume is bound back to it (claimRef
// with the claim's UID) and carries pv.kubernetes.io/provisioned-by naming
// one of Options.Provisioners. The PersistentVolumeClaimResize admission
// plugin (internal/admission) has already checked that the claim's
// StorageClass allows expansion.
//
// # Protocol
//
// The controller follows external-resizer's status protocol for a volume
// that needs no node expansion (upstream's RecoverVolumeExpansionFailure,
// GA in 1.34), so clients that watch it see what they would upstream:
//
//  1. the claim's status gets allocatedResources[storage] = the target size,
//     allocatedResourceStatuses[storage] = ControllerResizeInProgress and
//     the Resizing condition; event Resizing;
//  2. the volume's spec.capacity[storage] becomes the target size;
//  3. the claim's status.capacity[storage] becomes the volume's capacity,
//     allocatedResourceStatuses[storage] and the resize conditions are
//     dropped (allocatedResources stays); event VolumeResizeSuccessful.
//
// Any step may fail or race another writer; the next sync picks the claim
// up where the status says it stopped. The target size is external-resizer's
// choice: the request, or the size already recorded in allocatedResources
// while an earlier expansion is unfinished (expand_and_recover.go), which
// decide.go holds as pure functions.
//
// # Caches and writes
//
// Informer events only say which claim to look at; the decision is made on
// a live read of the claim and its volume, and every write carries the
// resourceVersion read, so a conflict means another writer won and the
// claim is retried with back-off. Expansion is rare, and two GETs keep a
// lagging cache from repeating a finished step and its events.
//
// # Differences from upstream
//
// Skiff's provisioners make plain directories with no quota, so the
// "resize" is the API writes alone: no CSI ControllerExpandVolume call, no
// FileSystemResizePending or NodeResizePending (the kubelet has nothing to
// grow), no pre-resize-capacity annotation. Claims of any other provisioner
// are left alone, for their own resizer; the expand controller's
// ExternalExpanding event and volume.kubernetes.io/storage-resizer
// annotation, which hand a claim to an out-of-process resizer, are
// therefore never written. A volume already larger than the target keeps
// its size, and the claim reports it, as a CSI driver returning a larger
// capacity would. Writes are Update and UpdateStatus rather than patches; a
// conflict is retried without the VolumeResizeFailed event upstream would
// record. Events report as EventComponent whichever provisioner made the
// volume.
package volumeexpand
