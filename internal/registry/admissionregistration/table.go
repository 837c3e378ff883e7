package admissionregistration

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// The tables are upstream's `kubectl get` columns, descriptions included.

var webhookColumns = []metav1.TableColumnDefinition{
	registry.NameColumn,
	{Name: "Webhooks", Type: "integer", Description: "Webhooks indicates the number of webhooks registered in this configuration"},
	registry.AgeColumn,
}

// mutatingWebhookTable is NAME WEBHOOKS AGE.
var mutatingWebhookTable = &registry.Table{
	Columns: webhookColumns,
	Row: func(obj runtime.Object) []interface{} {
		c, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
		if !ok {
			return nil
		}
		return []interface{}{c.Name, int64(len(c.Webhooks)), registry.Age(c)}
	},
}

// validatingWebhookTable is NAME WEBHOOKS AGE.
var validatingWebhookTable = &registry.Table{
	Columns: webhookColumns,
	Row: func(obj runtime.Object) []interface{} {
		c, ok := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
		if !ok {
			return nil
		}
		return []interface{}{c.Name, int64(len(c.Webhooks)), registry.Age(c)}
	},
}

// policyTable is NAME VALIDATIONS PARAMKIND AGE; PARAMKIND is
// "apiVersion/kind" ("v1/ConfigMap") or <unset>.
var policyTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Validations", Type: "integer", Description: "Validations indicates the number of validation rules defined in this configuration"},
		{Name: "ParamKind", Type: "string", Description: "ParamKind specifies the kind of resources used to parameterize this policy"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
		if !ok {
			return nil
		}
		paramKind := "<unset>"
		if pk := p.Spec.ParamKind; pk != nil {
			paramKind = pk.APIVersion + "/" + pk.Kind
		}
		return []interface{}{p.Name, int64(len(p.Spec.Validations)), paramKind, registry.Age(p)}
	},
}

// bindingTable is NAME POLICYNAME PARAMREF AGE; PARAMREF is
// "namespace/name", "*/name" when the namespace is unset (the table
// cannot tell whether the parameter is cluster-scoped), the selector, or
// <unset>.
var bindingTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "PolicyName", Type: "string", Description: "PolicyName indicates the policy definition which the policy binding binded to"},
		{Name: "ParamRef", Type: "string", Description: "ParamRef indicates the param resource which sets the configration param"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		b, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
		if !ok {
			return nil
		}
		return []interface{}{b.Name, b.Spec.PolicyName, paramRefCell(b.Spec.ParamRef), registry.Age(b)}
	},
}

func paramRefCell(pr *admissionregistrationv1.ParamRef) string {
	switch {
	case pr == nil:
		return "<unset>"
	case pr.Name != "" && pr.Namespace != "":
		return pr.Namespace + "/" + pr.Name
	case pr.Name != "":
		return "*/" + pr.Name
	case pr.Selector != nil:
		// Upstream prints the selector's generated String().
		return pr.Selector.String()
	default:
		return "<unset>"
	}
}
