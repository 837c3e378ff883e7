package apiregistration

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

func TestTable(t *testing.T) {
	withCondition := func(s *apiregistrationv1.APIService, status apiregistrationv1.ConditionStatus, reason string) *apiregistrationv1.APIService {
		s.Status.Conditions = []apiregistrationv1.APIServiceCondition{
			{Type: "Other", Status: apiregistrationv1.ConditionFalse, Reason: "NotThisOne"},
			{Type: apiregistrationv1.Available, Status: status, Reason: reason},
		}
		return s
	}
	tests := []struct {
		name string
		obj  *apiregistrationv1.APIService
		want []interface{}
	}{
		{"local, available", withCondition(validLocal(), apiregistrationv1.ConditionTrue, "Local"),
			[]interface{}{"v1.apps", "Local", "True", "<unknown>"}},
		{"service, no condition", validService(),
			[]interface{}{"v1beta1.metrics.k8s.io", "kube-system/metrics-server", "Unknown", "<unknown>"}},
		{"service, unavailable", withCondition(validService(), apiregistrationv1.ConditionFalse, "MissingEndpoints"),
			[]interface{}{"v1beta1.metrics.k8s.io", "kube-system/metrics-server", "False (MissingEndpoints)", "<unknown>"}},
		{"service, unavailable without reason", withCondition(validService(), apiregistrationv1.ConditionFalse, ""),
			[]interface{}{"v1beta1.metrics.k8s.io", "kube-system/metrics-server", "False", "<unknown>"}},
		{"service, unknown with reason", withCondition(validService(), apiregistrationv1.ConditionUnknown, "Pending"),
			[]interface{}{"v1beta1.metrics.k8s.io", "kube-system/metrics-server", "Unknown (Pending)", "<unknown>"}},
	}
	tbl := resource(t).Table
	var names []string
	for _, c := range tbl.Columns {
		names = append(names, c.Name)
		if c.Description == "" {
			t.Errorf("column %s has no description", c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Service", "Available", "Age"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := tbl.Row(tt.obj)
			if diff := cmp.Diff(tt.want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
