package admissionregistration

import (
	"context"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of admissionregistration.k8s.io/v1.
func Resources() []*registry.Resource {
	gv := admissionregistrationv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GroupVersion: gv,
			Name:         "mutatingwebhookconfigurations",
			Singular:     "mutatingwebhookconfiguration",
			Kind:         "MutatingWebhookConfiguration",
			Categories:   []string{"api-extensions"},
			Namespaced:   false,
			New:          func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfiguration{} },
			NewList:      func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfigurationList{} },
			Strategy: registry.Strategy{
				PrepareForCreate: prepareMutatingForCreate,
				PrepareForUpdate: prepareMutatingForUpdate,
				Default:          defaultMutatingWebhookConfiguration,
				Validate:         validateMutatingWebhookConfiguration,
				ValidateUpdate:   validateMutatingWebhookConfigurationUpdate,
			},
			Table: mutatingWebhookTable,
		},
		{
			GroupVersion: gv,
			Name:         "validatingwebhookconfigurations",
			Singular:     "validatingwebhookconfiguration",
			Kind:         "ValidatingWebhookConfiguration",
			Categories:   []string{"api-extensions"},
			Namespaced:   false,
			New:          func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
			NewList:      func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfigurationList{} },
			Strategy: registry.Strategy{
				PrepareForCreate: prepareValidatingForCreate,
				PrepareForUpdate: prepareValidatingForUpdate,
				Default:          defaultValidatingWebhookConfiguration,
				Validate:         validateValidatingWebhookConfiguration,
				ValidateUpdate:   validateValidatingWebhookConfigurationUpdate,
			},
			Table: validatingWebhookTable,
		},
		{
			GroupVersion: gv,
			Name:         "validatingadmissionpolicies",
			Singular:     "validatingadmissionpolicy",
			Kind:         "ValidatingAdmissionPolicy",
			Categories:   []string{"api-extensions"},
			Namespaced:   false,
			New:          func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicy{} },
			NewList:      func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyList{} },
			// PrepareForCreate and PrepareForUpdate are the registry's
			// defaults, which are upstream's here: status cleared and
			// generation 1 on create; status kept and generation bumped
			// on a spec change on update.
			Strategy: registry.Strategy{
				PrepareForStatusUpdate: preparePolicyForStatusUpdate,
				Default:                defaultPolicy,
				Validate:               validatePolicy,
				ValidateUpdate:         validatePolicyUpdate,
				ValidateStatusUpdate:   validatePolicyStatusUpdate,
			},
			Status: true,
			Table:  policyTable,
		},
		{
			GroupVersion: gv,
			Name:         "validatingadmissionpolicybindings",
			Singular:     "validatingadmissionpolicybinding",
			Kind:         "ValidatingAdmissionPolicyBinding",
			Categories:   []string{"api-extensions"},
			Namespaced:   false,
			New:          func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{} },
			NewList:      func() runtime.Object { return &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{} },
			// No status: the registry's defaults set generation 1 on
			// create and bump it on a spec change, as upstream.
			Strategy: registry.Strategy{
				Default:        defaultBinding,
				Validate:       validateBinding,
				ValidateUpdate: validateBindingUpdate,
			},
			Table: bindingTable,
		},
		{
			GroupVersion: gv,
			Name:         "mutatingadmissionpolicies",
			Singular:     "mutatingadmissionpolicy",
			Kind:         "MutatingAdmissionPolicy",
			Categories:   []string{"api-extensions"},
			Namespaced:   false,
			New:          func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicy{} },
			NewList:      func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicyList{} },
			// No status: the registry's defaults set generation 1 on
			// create and bump it on a spec change, as upstream.
			Strategy: registry.Strategy{
				Default:        defaultMutatingPolicy,
				Validate:       validateMutatingPolicy,
				ValidateUpdate: validateMutatingPolicyUpdate,
			},
			Table: mutatingPolicyTable,
		},
		{
			GroupVersion: gv,
			Name:         "mutatingadmissionpolicybindings",
			Singular:     "mutatingadmissionpolicybinding",
			Kind:         "MutatingAdmissionPolicyBinding",
			Categories:   []string{"api-extensions"},
			Namespaced:   false,
			New:          func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicyBinding{} },
			NewList:      func() runtime.Object { return &admissionregistrationv1.MutatingAdmissionPolicyBindingList{} },
			Strategy: registry.Strategy{
				Default:        defaultMutatingBinding,
				Validate:       validateMutatingBinding,
				ValidateUpdate: validateMutatingBindingUpdate,
			},
			Table: mutatingBindingTable,
		},
	}
}

// A webhook configuration has no spec, so the registry's defaults would
// leave its generation alone; upstream counts the webhooks as its spec:
// generation 1 on create, bumped when the webhooks change.

func prepareMutatingForCreate(_ context.Context, obj runtime.Object) {
	if c, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
		c.Generation = 1
	}
}

func prepareMutatingForUpdate(_ context.Context, obj, old runtime.Object) {
	c, ok1 := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
	o, ok2 := old.(*admissionregistrationv1.MutatingWebhookConfiguration)
	if !ok1 || !ok2 {
		return
	}
	c.Generation = nextGeneration(o.Generation, !apiequality.Semantic.DeepEqual(c.Webhooks, o.Webhooks))
}

func prepareValidatingForCreate(_ context.Context, obj runtime.Object) {
	if c, ok := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration); ok {
		c.Generation = 1
	}
}

func prepareValidatingForUpdate(_ context.Context, obj, old runtime.Object) {
	c, ok1 := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
	o, ok2 := old.(*admissionregistrationv1.ValidatingWebhookConfiguration)
	if !ok1 || !ok2 {
		return
	}
	c.Generation = nextGeneration(o.Generation, !apiequality.Semantic.DeepEqual(c.Webhooks, o.Webhooks))
}

func nextGeneration(old int64, changed bool) int64 {
	if changed {
		return old + 1
	}
	return old
}

// preparePolicyForStatusUpdate keeps everything but status, as the
// registry's default does, and also the labels and annotations: upstream
// resets the whole of metadata on a policy's status write
// (ResetObjectMetaForStatus).
func preparePolicyForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	p, ok1 := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	o, ok2 := old.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if !ok1 || !ok2 {
		return
	}
	p.Labels, p.Annotations = o.Labels, o.Annotations
}
