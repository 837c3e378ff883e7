package apiserver

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/skiff-io/skiff/internal/registry"
)

// Operation is the kind of write admission sees.
type Operation string

const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
	// Connect is pods/exec, attach and portforward: only the dynamic
	// admission (webhooks, policies) sees it, as upstream's built-in
	// plugins mostly ignore it.
	Connect Operation = "CONNECT"
)

// AdmissionRequest is one write as admission sees it. Obj is the object
// after defaulting (nil on delete); Old the stored object (nil on create).
// Sub is the subresource written: "", "status", "finalize", or one of the
// resource's status-like Subresources ("approval").
type AdmissionRequest struct {
	Operation Operation
	Resource  *registry.Resource
	Sub       string
	Namespace string
	Name      string
	Obj       runtime.Object
	Old       runtime.Object
	DryRun    bool

	// scale marks a write of the scale subresource: the built-in admission
	// sees the parent object (Sub ""), the dynamic admission the Scales.
	scale bool
	// attrs is the request as the dynamic admission sees it, made once
	// (dynamicadmission.go).
	attrs admission.Attributes
}

// Admission is a built-in admission plugin: it may mutate Obj, or reject
// the write by returning an API error (apierrors.New*). It runs inside the
// storage compare-and-swap loop on updates, so it may be called more than
// once for one request and must not have side effects that cannot be
// repeated.
type Admission interface {
	Admit(ctx context.Context, req *AdmissionRequest) error
}

// AdmissionFunc adapts a function to Admission.
type AdmissionFunc func(ctx context.Context, req *AdmissionRequest) error

func (f AdmissionFunc) Admit(ctx context.Context, req *AdmissionRequest) error { return f(ctx, req) }

// admit runs the mutating phase of admission on a write: the built-in
// Admission, then the mutating webhooks. Its caller validates the object
// next, then calls validate.
func (s *Server) admit(ctx context.Context, req *AdmissionRequest) error {
	for _, a := range s.cfg.Admission {
		if err := a.Admit(ctx, req); err != nil {
			return err
		}
	}
	return s.admitDynamic(ctx, req)
}

// validate runs the validating phase of admission, after the object's
// own validation: the built-in Validation, then the validating webhooks
// and ValidatingAdmissionPolicies. Nothing here changes the object.
func (s *Server) validate(ctx context.Context, req *AdmissionRequest) error {
	for _, a := range s.cfg.Validation {
		if err := a.Admit(ctx, req); err != nil {
			return err
		}
	}
	return s.validateDynamic(ctx, req)
}
