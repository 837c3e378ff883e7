package openapi

//go:generate go run ./markergen zz_generated.markers.go k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/api/resource k8s.io/apimachinery/pkg/util/intstr k8s.io/apimachinery/pkg/runtime k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/batch/v1 k8s.io/api/autoscaling/v1 k8s.io/api/autoscaling/v2 k8s.io/api/coordination/v1 k8s.io/api/discovery/v1 k8s.io/api/events/v1 k8s.io/api/policy/v1 k8s.io/api/rbac/v1 k8s.io/api/scheduling/v1 k8s.io/api/networking/v1 k8s.io/api/node/v1 k8s.io/api/resource/v1 k8s.io/api/storagemigration/v1 k8s.io/api/certificates/v1 k8s.io/api/authentication/v1 k8s.io/api/admissionregistration/v1 k8s.io/kube-aggregator/pkg/apis/apiregistration/v1

// fieldMarker is what the comment markers of one struct field say, as
// markergen read them from the k8s.io/api sources: the list and map
// semantics server-side apply needs, and overrides of the optional-when-
// omitempty rule (optional: +optional on a field without omitempty;
// required: +required on a field with it).
type fieldMarker struct {
	listType    string
	listMapKeys []string
	mapType     string // from +mapType or +structType
	optional    bool
	required    bool
}

// enumValue is one constant of a +enum string type and its comment, the
// constant's name trimmed off as upstream's generator does.
type enumValue struct {
	value, comment string
}

// markersOf returns the markers of field name of the struct named by
// pkgPath and typeName.
func markersOf(pkgPath, typeName, field string) fieldMarker {
	return generatedFieldMarkers[pkgPath+"."+typeName+"."+field]
}
