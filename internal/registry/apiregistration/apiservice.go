package apiregistration

import (
	"context"

	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"

	"github.com/skiff-io/skiff/internal/registry"
)

// init registers the v1 types (and their defaulting) in client-go's
// scheme, which the server's storage and HTTP codecs use; client-go does
// not carry apiregistration.k8s.io.
func init() {
	if !scheme.Scheme.IsVersionRegistered(apiregistrationv1.SchemeGroupVersion) {
		utilruntime.Must(apiregistrationv1.AddToScheme(scheme.Scheme))
	}
}

// Resources returns the descriptor of apiservices.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: apiregistrationv1.SchemeGroupVersion,
		Name:         "apiservices",
		Singular:     "apiservice",
		Kind:         "APIService",
		Categories:   []string{"api-extensions"},
		Namespaced:   false,
		New:          func() runtime.Object { return &apiregistrationv1.APIService{} },
		NewList:      func() runtime.Object { return &apiregistrationv1.APIServiceList{} },
		Strategy: registry.Strategy{
			PrepareForCreate:       prepareForCreate,
			PrepareForUpdate:       prepareForUpdate,
			PrepareForStatusUpdate: prepareForStatusUpdate,
			Default:                setDefaults,
			Validate:               validateCreate,
			ValidateUpdate:         validateUpdate,
			ValidateStatusUpdate:   validateStatusUpdate,
			// The server checks that the name is a path segment; that it
			// is spec.version+"."+spec.group needs the object, so
			// Validate checks it.
			NameValidation: func(name string, _ bool) []string { return path.IsValidPathSegmentName(name) },
		},
		Status: true,
		Table:  table,
		// Upstream's set is generic.ObjectMetaFieldsSet(meta, true):
		// metadata.namespace is there, always empty.
		Fields: func(obj runtime.Object) fields.Set {
			name := ""
			if s, ok := obj.(*apiregistrationv1.APIService); ok {
				name = s.Name
			}
			return fields.Set{"metadata.name": name, "metadata.namespace": ""}
		},
	}}
}

// setDefaults applies upstream's v1 defaults: a service reference's port
// is 443.
func setDefaults(obj runtime.Object) {
	if s, ok := obj.(*apiregistrationv1.APIService); ok {
		apiregistrationv1.SetObjectDefaults_APIService(s)
	}
}

// prepareForCreate clears status and marks a local APIService available:
// nothing needs to be checked to serve it. Generation is left as sent, as
// upstream leaves it.
func prepareForCreate(_ context.Context, obj runtime.Object) {
	s, ok := obj.(*apiregistrationv1.APIService)
	if !ok {
		return
	}
	s.Status = apiregistrationv1.APIServiceStatus{}
	if s.Spec.Service == nil {
		helper.SetAPIServiceCondition(s, helper.NewLocalAvailableAPIServiceCondition())
	}
}

// prepareForUpdate keeps status as stored. Generation is the stored one
// (the server carries it over), never bumped, as upstream.
func prepareForUpdate(_ context.Context, obj, old runtime.Object) {
	s, ok1 := obj.(*apiregistrationv1.APIService)
	o, ok2 := old.(*apiregistrationv1.APIService)
	if !ok1 || !ok2 {
		return
	}
	s.Status = o.Status
}

// prepareForStatusUpdate keeps everything but status, as the registry's
// default does, and also the labels and annotations, as upstream's status
// strategy does.
func prepareForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	s, ok1 := obj.(*apiregistrationv1.APIService)
	o, ok2 := old.(*apiregistrationv1.APIService)
	if !ok1 || !ok2 {
		return
	}
	s.Labels, s.Annotations = o.Labels, o.Annotations
}
