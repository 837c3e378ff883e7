package storage

import (
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of storage.k8s.io/v1. The types are in
// client-go's scheme already, with their protobuf form.
func Resources() []*registry.Resource {
	gv := storagev1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GroupVersion: gv,
			Name:         "storageclasses",
			Singular:     "storageclass",
			Kind:         "StorageClass",
			ShortNames:   []string{"sc"},
			Namespaced:   false,
			New:          func() runtime.Object { return &storagev1.StorageClass{} },
			NewList:      func() runtime.Object { return &storagev1.StorageClassList{} },
			// No spec, no status: the registry's default preparation has
			// nothing to do, as upstream's.
			Strategy: registry.Strategy{
				Default:          defaultStorageClass,
				Validate:         validateStorageClass,
				ValidateUpdate:   validateStorageClassUpdate,
				WarningsOnCreate: storageClassWarnings,
				WarningsOnUpdate: func(obj, _ runtime.Object) []string { return storageClassWarnings(obj) },
			},
			Table:               storageClassTable,
			ReturnDeletedObject: true,
		},
		{
			GroupVersion: gv,
			Name:         "csidrivers",
			Singular:     "csidriver",
			Kind:         "CSIDriver",
			Namespaced:   false,
			New:          func() runtime.Object { return &storagev1.CSIDriver{} },
			NewList:      func() runtime.Object { return &storagev1.CSIDriverList{} },
			Strategy: registry.Strategy{
				PrepareForCreate: prepareCSIDriverForCreate,
				PrepareForUpdate: prepareCSIDriverForUpdate,
				Default:          defaultCSIDriver,
				Validate:         validateCSIDriver,
				ValidateUpdate:   validateCSIDriverUpdate,
				WarningsOnCreate: csiDriverWarningsOnCreate,
				WarningsOnUpdate: csiDriverWarningsOnUpdate,
			},
			Table:               csiDriverTable,
			ReturnDeletedObject: true,
		},
		{
			GroupVersion: gv,
			Name:         "csinodes",
			Singular:     "csinode",
			Kind:         "CSINode",
			Namespaced:   false,
			New:          func() runtime.Object { return &storagev1.CSINode{} },
			NewList:      func() runtime.Object { return &storagev1.CSINodeList{} },
			Strategy: registry.Strategy{
				PrepareForCreate: prepareCSINodeForCreate,
				PrepareForUpdate: prepareCSINodeForUpdate,
				Validate:         validateCSINode,
				ValidateUpdate:   validateCSINodeUpdate,
			},
			Table:               csiNodeTable,
			ReturnDeletedObject: true,
		},
		{
			GroupVersion: gv,
			Name:         "volumeattachments",
			Singular:     "volumeattachment",
			Kind:         "VolumeAttachment",
			Namespaced:   false,
			New:          func() runtime.Object { return &storagev1.VolumeAttachment{} },
			NewList:      func() runtime.Object { return &storagev1.VolumeAttachmentList{} },
			Strategy: registry.Strategy{
				PrepareForCreate:       prepareVolumeAttachmentForCreate,
				PrepareForUpdate:       prepareVolumeAttachmentForUpdate,
				PrepareForStatusUpdate: prepareVolumeAttachmentForStatusUpdate,
				Validate:               validateVolumeAttachmentCreate,
				ValidateUpdate:         validateVolumeAttachmentUpdate,
				ValidateStatusUpdate:   validateVolumeAttachmentUpdate,
			},
			Status:              true,
			Table:               volumeAttachmentTable,
			ReturnDeletedObject: true,
		},
		{
			GroupVersion: gv,
			Name:         "csistoragecapacities",
			Singular:     "csistoragecapacity",
			Kind:         "CSIStorageCapacity",
			Namespaced:   true,
			New:          func() runtime.Object { return &storagev1.CSIStorageCapacity{} },
			NewList:      func() runtime.Object { return &storagev1.CSIStorageCapacityList{} },
			Strategy: registry.Strategy{
				Validate:         validateCSIStorageCapacity,
				ValidateUpdate:   validateCSIStorageCapacityUpdate,
				WarningsOnCreate: csiStorageCapacityWarnings,
				WarningsOnUpdate: func(obj, _ runtime.Object) []string { return csiStorageCapacityWarnings(obj) },
			},
			Table: csiStorageCapacityTable,
		},
		{
			GroupVersion: gv,
			Name:         "volumeattributesclasses",
			Singular:     "volumeattributesclass",
			Kind:         "VolumeAttributesClass",
			ShortNames:   []string{"vac"},
			Namespaced:   false,
			New:          func() runtime.Object { return &storagev1.VolumeAttributesClass{} },
			NewList:      func() runtime.Object { return &storagev1.VolumeAttributesClassList{} },
			Strategy: registry.Strategy{
				Validate:       validateVolumeAttributesClass,
				ValidateUpdate: validateVolumeAttributesClassUpdate,
			},
			Table:               volumeAttributesClassTable,
			ReturnDeletedObject: true,
		},
	}
}
