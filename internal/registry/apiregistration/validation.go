package apiregistration

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

const (
	maxGroupPriorityMinimum = 20000
	maxVersionPriority      = 1000
)

func validateCreate(obj runtime.Object) field.ErrorList {
	s, ok := obj.(*apiregistrationv1.APIService)
	if !ok {
		return nil
	}
	return validateAPIService(s)
}

// validateUpdate checks a replacement as a new object: upstream has no
// immutable fields beyond metadata, which the server checks.
func validateUpdate(obj, _ runtime.Object) field.ErrorList {
	return validateCreate(obj)
}

// validateAPIService checks the name against the spec, then the spec.
func validateAPIService(s *apiregistrationv1.APIService) field.ErrorList {
	var errs field.ErrorList
	mp := field.NewPath("metadata")
	required := s.Spec.Version + "." + s.Spec.Group
	// The server has refused names that are not path segments; those it
	// let through must be version.group. Upstream checks generateName the
	// same way, so a generated name is always refused.
	if n := s.GenerateName; n != "" && len(path.IsValidPathSegmentName(n)) == 0 && n != required {
		errs = append(errs, field.Invalid(mp.Child("generateName"), n, nameMessage(required)))
	}
	if n := s.Name; n != "" && len(path.IsValidPathSegmentName(n)) == 0 && n != required {
		errs = append(errs, field.Invalid(mp.Child("name"), n, nameMessage(required)))
	}
	return append(errs, validateSpec(&s.Spec, field.NewPath("spec"))...)
}

func nameMessage(required string) string {
	return fmt.Sprintf("must be `spec.version+\".\"+spec.group`: %q", required)
}

func validateSpec(spec *apiregistrationv1.APIServiceSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	// Only the legacy core group, v1, has an empty group name.
	if spec.Group == "" && spec.Version != "v1" {
		errs = append(errs, field.Required(p.Child("group"), "only v1 may have an empty group and it better be legacy kube"))
	}
	if spec.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(spec.Group) {
			errs = append(errs, field.Invalid(p.Child("group"), spec.Group, msg))
		}
	}
	for _, msg := range validation.IsDNS1035Label(spec.Version) {
		errs = append(errs, field.Invalid(p.Child("version"), spec.Version, msg))
	}
	if spec.GroupPriorityMinimum <= 0 || spec.GroupPriorityMinimum > maxGroupPriorityMinimum {
		errs = append(errs, field.Invalid(p.Child("groupPriorityMinimum"), spec.GroupPriorityMinimum, "must be positive and less than 20000"))
	}
	if spec.VersionPriority <= 0 || spec.VersionPriority > maxVersionPriority {
		errs = append(errs, field.Invalid(p.Child("versionPriority"), spec.VersionPriority, "must be positive and less than 1000"))
	}

	svc := spec.Service
	if svc == nil {
		// A local APIService is served by this server: there is no TLS
		// connection to configure.
		if len(spec.CABundle) > 0 {
			errs = append(errs, field.Invalid(p.Child("caBundle"), fmt.Sprintf("%d bytes", len(spec.CABundle)), "local APIServices may not have a caBundle"))
		}
		if spec.InsecureSkipTLSVerify {
			errs = append(errs, field.Invalid(p.Child("insecureSkipTLSVerify"), spec.InsecureSkipTLSVerify, "local APIServices may not have insecureSkipTLSVerify"))
		}
		return errs
	}
	sp := p.Child("service")
	if svc.Namespace == "" {
		errs = append(errs, field.Required(sp.Child("namespace"), ""))
	}
	if svc.Name == "" {
		errs = append(errs, field.Required(sp.Child("name"), ""))
	}
	// Defaulting sets the port; a nil one is checked as upstream's
	// internal form has it, 0.
	var port int32
	if svc.Port != nil {
		port = *svc.Port
	}
	if msgs := validation.IsValidPortNum(int(port)); len(msgs) > 0 {
		errs = append(errs, field.Invalid(sp.Child("port"), port, "port is not valid: "+strings.Join(msgs, ", ")))
	}
	if spec.InsecureSkipTLSVerify && len(spec.CABundle) > 0 {
		errs = append(errs, field.Invalid(p.Child("insecureSkipTLSVerify"), spec.InsecureSkipTLSVerify, "may not be true if caBundle is present"))
	}
	return errs
}

var conditionStatuses = []string{
	string(apiregistrationv1.ConditionTrue),
	string(apiregistrationv1.ConditionFalse),
	string(apiregistrationv1.ConditionUnknown),
}

// validateStatusUpdate checks the conditions' statuses, all upstream
// checks on a status write.
func validateStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	s, ok := obj.(*apiregistrationv1.APIService)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	cp := field.NewPath("status", "conditions")
	for i, c := range s.Status.Conditions {
		switch c.Status {
		case apiregistrationv1.ConditionTrue, apiregistrationv1.ConditionFalse, apiregistrationv1.ConditionUnknown:
		default:
			errs = append(errs, field.NotSupported(cp.Index(i).Child("status"), c.Status, conditionStatuses))
		}
	}
	return errs
}
