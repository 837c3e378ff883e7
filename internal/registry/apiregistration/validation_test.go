package apiregistration

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// errFields renders errs as "Type field" for comparison.
func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

// checkErrs compares errs with want ("Type field" each) and, when detail
// is set, requires one of them to say it.
func checkErrs(t *testing.T, errs field.ErrorList, want []string, detail string) {
	t.Helper()
	if diff := cmp.Diff(want, errFields(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\n%v", diff, errs)
	}
	if detail == "" {
		return
	}
	for _, e := range errs {
		if strings.Contains(e.Detail, detail) {
			return
		}
	}
	t.Errorf("no error says %q: %v", detail, errs)
}

func TestValidate(t *testing.T) {
	type svc = apiregistrationv1.APIService
	tests := []struct {
		name   string
		base   func() *svc
		change func(s *svc)
		want   []string
		detail string
	}{
		{name: "service", base: validService, change: func(s *svc) {}},
		{name: "local", base: validLocal, change: func(s *svc) {}},
		{name: "legacy core group", base: validLocal, change: func(s *svc) { s.Name, s.Spec.Group = "v1.", "" }},
		{
			name:   "name not version.group",
			base:   validService,
			change: func(s *svc) { s.Name = "metrics" },
			want:   []string{"FieldValueInvalid metadata.name"},
			detail: "must be `spec.version+\".\"+spec.group`: \"v1beta1.metrics.k8s.io\"",
		},
		{
			// The server refuses it as a path segment; Validate does not
			// say it twice.
			name:   "name not a path segment",
			base:   validService,
			change: func(s *svc) { s.Name = "v1beta1/metrics" },
		},
		{
			name:   "generateName",
			base:   validService,
			change: func(s *svc) { s.GenerateName, s.Name = "v1beta1.metrics.k8s.io", "v1beta1.metrics.k8s.ioxyz12" },
			want:   []string{"FieldValueInvalid metadata.name"},
		},
		{
			name:   "generateName not the name",
			base:   validService,
			change: func(s *svc) { s.GenerateName, s.Name = "metrics-", "metrics-xyz12" },
			want:   []string{"FieldValueInvalid metadata.generateName", "FieldValueInvalid metadata.name"},
		},
		{
			name:   "empty group with another version",
			base:   validLocal,
			change: func(s *svc) { s.Name, s.Spec.Group, s.Spec.Version = "v2.", "", "v2" },
			want:   []string{"FieldValueRequired spec.group"},
			detail: "only v1 may have an empty group and it better be legacy kube",
		},
		{
			name:   "group not a subdomain",
			base:   validLocal,
			change: func(s *svc) { s.Name, s.Spec.Group = "v1.Apps", "Apps" },
			want:   []string{"FieldValueInvalid spec.group"},
			detail: "a lowercase RFC 1123 subdomain",
		},
		{
			name:   "version not a DNS-1035 label",
			base:   validLocal,
			change: func(s *svc) { s.Name, s.Spec.Version = "1v.apps", "1v" },
			want:   []string{"FieldValueInvalid spec.version"},
			detail: "a DNS-1035 label",
		},
		{
			name:   "no version",
			base:   validLocal,
			change: func(s *svc) { s.Name, s.Spec.Version = ".apps", "" },
			want:   []string{"FieldValueInvalid spec.version"},
		},
		{
			name:   "groupPriorityMinimum zero",
			base:   validLocal,
			change: func(s *svc) { s.Spec.GroupPriorityMinimum = 0 },
			want:   []string{"FieldValueInvalid spec.groupPriorityMinimum"},
			detail: "must be positive and less than 20000",
		},
		{name: "groupPriorityMinimum 20000", base: validLocal, change: func(s *svc) { s.Spec.GroupPriorityMinimum = 20000 }},
		{
			name:   "groupPriorityMinimum too high",
			base:   validLocal,
			change: func(s *svc) { s.Spec.GroupPriorityMinimum = 20001 },
			want:   []string{"FieldValueInvalid spec.groupPriorityMinimum"},
		},
		{
			name:   "versionPriority negative",
			base:   validLocal,
			change: func(s *svc) { s.Spec.VersionPriority = -1 },
			want:   []string{"FieldValueInvalid spec.versionPriority"},
			detail: "must be positive and less than 1000",
		},
		{name: "versionPriority 1000", base: validLocal, change: func(s *svc) { s.Spec.VersionPriority = 1000 }},
		{
			name:   "versionPriority too high",
			base:   validLocal,
			change: func(s *svc) { s.Spec.VersionPriority = 1001 },
			want:   []string{"FieldValueInvalid spec.versionPriority"},
		},
		{
			name:   "local with caBundle",
			base:   validLocal,
			change: func(s *svc) { s.Spec.CABundle = []byte("pem") },
			want:   []string{"FieldValueInvalid spec.caBundle"},
			detail: "local APIServices may not have a caBundle",
		},
		{
			name:   "local with insecureSkipTLSVerify",
			base:   validLocal,
			change: func(s *svc) { s.Spec.InsecureSkipTLSVerify = true },
			want:   []string{"FieldValueInvalid spec.insecureSkipTLSVerify"},
			detail: "local APIServices may not have insecureSkipTLSVerify",
		},
		{
			name:   "service without namespace and name",
			base:   validService,
			change: func(s *svc) { s.Spec.Service.Namespace, s.Spec.Service.Name = "", "" },
			want:   []string{"FieldValueRequired spec.service.namespace", "FieldValueRequired spec.service.name"},
		},
		{
			name:   "service port out of range",
			base:   validService,
			change: func(s *svc) { s.Spec.Service.Port = ptr(int32(65536)) },
			want:   []string{"FieldValueInvalid spec.service.port"},
			detail: "port is not valid: must be between 1 and 65535, inclusive",
		},
		{
			name:   "service port unset",
			base:   validService,
			change: func(s *svc) { s.Spec.Service.Port = nil },
			want:   []string{"FieldValueInvalid spec.service.port"},
		},
		{
			name:   "caBundle with insecureSkipTLSVerify",
			base:   validService,
			change: func(s *svc) { s.Spec.CABundle = []byte("pem") },
			want:   []string{"FieldValueInvalid spec.insecureSkipTLSVerify"},
			detail: "may not be true if caBundle is present",
		},
		{name: "caBundle alone", base: validService, change: func(s *svc) { s.Spec.CABundle, s.Spec.InsecureSkipTLSVerify = []byte("pem"), false }},
	}
	r := resource(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.base()
			tt.change(s)
			checkErrs(t, r.Strategy.Validate(s), tt.want, tt.detail)
			// An update is checked as a create: the same errors.
			checkErrs(t, r.Strategy.ValidateUpdate(s, tt.base()), tt.want, tt.detail)
		})
	}
}

func TestNameValidation(t *testing.T) {
	nameFn := resource(t).Strategy.NameValidation
	for name, want := range map[string][]string{
		"v1beta1.metrics.k8s.io": nil,
		"v1.":                    nil,
		"..":                     {"may not be '..'"},
		"a/b%c":                  {"may not contain '/'", "may not contain '%'"},
	} {
		if diff := cmp.Diff(want, nameFn(name, false)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", name, diff)
		}
	}
}

func TestValidateStatusUpdate(t *testing.T) {
	r := resource(t)
	old := validService()
	s := old.DeepCopy()
	s.Status.Conditions = []apiregistrationv1.APIServiceCondition{
		{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse, Reason: "MissingEndpoints"},
		{Type: "Other", Status: "Maybe"},
		{Type: "Third", Status: apiregistrationv1.ConditionUnknown},
	}
	checkErrs(t, r.Strategy.ValidateStatusUpdate(s, old), []string{"FieldValueNotSupported status.conditions[1].status"},
		`supported values: "True", "False", "Unknown"`)

	// A status write is not checked against the spec's rules: upstream
	// checks only the conditions.
	bad := old.DeepCopy()
	bad.Spec.VersionPriority = 0
	checkErrs(t, r.Strategy.ValidateStatusUpdate(bad, old), nil, "")
}
