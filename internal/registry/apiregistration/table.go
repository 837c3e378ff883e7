package apiregistration

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"

	"github.com/skiff-io/skiff/internal/registry"
)

// table is upstream's NAME SERVICE AVAILABLE AGE, descriptions included.
// SERVICE is "namespace/name", or Local for an APIService this server
// serves itself; AVAILABLE the Available condition's status, followed by
// its reason when not True ("False (MissingEndpoints)"), or Unknown when
// there is no such condition.
var table = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Service", Type: "string", Description: "The reference to the service that hosts this API endpoint."},
		{Name: "Available", Type: "string", Description: "Whether this service is available."},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		s, ok := obj.(*apiregistrationv1.APIService)
		if !ok {
			return nil
		}
		return []interface{}{s.Name, serviceCell(s.Spec.Service), availableCell(s), registry.Age(s)}
	},
}

func serviceCell(svc *apiregistrationv1.ServiceReference) string {
	if svc == nil {
		return "Local"
	}
	return svc.Namespace + "/" + svc.Name
}

func availableCell(s *apiregistrationv1.APIService) string {
	c := helper.GetAPIServiceConditionByType(s, apiregistrationv1.Available)
	switch {
	case c == nil:
		return string(apiregistrationv1.ConditionUnknown)
	case c.Status != apiregistrationv1.ConditionTrue && c.Reason != "":
		return string(c.Status) + " (" + c.Reason + ")"
	default:
		return string(c.Status)
	}
}
