package apiserver

import (
	"context"
	"fmt"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-io/skiff/internal/registry"
)

// DynamicAdmission is the admission that the cluster's own objects
// configure: MutatingWebhookConfigurations, ValidatingWebhookConfigurations,
// MutatingAdmissionPolicies and ValidatingAdmissionPolicies
// (internal/admission/dynamic runs upstream's plugins for them). It speaks
// upstream's admission interface, so the server hands it upstream's
// attributes. Admit runs after the
// built-in admission and before validation; Validate after validation,
// with the built-in Validation.
type DynamicAdmission interface {
	// Active reports whether a write needs Admit and Validate at all:
	// false while the cluster has no configuration or policy, so that a
	// write does not pay for upstream's attributes.
	Active() bool
	Admit(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error
	Validate(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error
}

// TypeConverter returns the server's type converter: the structure of
// every built-in kind it serves, which its server-side apply merges by.
// The dynamic admission's mutating policies merge their apply
// configurations by it too. Built once, on first use.
func (s *Server) TypeConverter() (managedfields.TypeConverter, error) {
	return s.typeConverter()
}

// admitDynamic runs the mutating phase of the dynamic admission on req. A
// patched object is copied into req.Obj in place, so the caller's object
// is the one the webhooks returned.
func (s *Server) admitDynamic(ctx context.Context, req *AdmissionRequest) error {
	if s.cfg.Dynamic == nil || !s.cfg.Dynamic.Active() {
		return nil
	}
	attrs := s.attributesOf(ctx, req)
	if err := s.cfg.Dynamic.Admit(withWarnings(ctx), attrs, objectInterfaces{s}); err != nil {
		return dynamicError(err)
	}
	if sc, ok := attrs.GetObject().(*autoscalingv1.Scale); ok && req.scale {
		// A webhook may have changed the replicas of the Scale it saw.
		req.Resource.Scale.SetReplicas(req.Obj, sc.Spec.Replicas)
	} else if prune := req.Resource.Prune; prune != nil && !req.scale {
		// Upstream decodes a custom resource a webhook patched through
		// its schema again: fields the schema does not know are dropped.
		prune(attrs.GetObject())
	}
	return nil
}

// validateDynamic runs the validating phase of the dynamic admission.
func (s *Server) validateDynamic(ctx context.Context, req *AdmissionRequest) error {
	if s.cfg.Dynamic == nil || !s.cfg.Dynamic.Active() {
		return nil
	}
	return dynamicError(s.cfg.Dynamic.Validate(withWarnings(ctx), s.attributesOf(ctx, req), objectInterfaces{s}))
}

// admitConnect runs the dynamic admission on a CONNECT (pods/exec,
// attach, portforward) whose options are opts, as upstream does before it
// connects: the webhooks and policies see the options object.
func (s *Server) admitConnect(ctx context.Context, sv *served, info requestInfo, opts runtime.Object) error {
	req := &AdmissionRequest{Operation: Connect, Resource: sv.res, Sub: info.sub, Namespace: info.namespace, Name: info.name, Obj: opts}
	if err := s.admitDynamic(ctx, req); err != nil {
		return err
	}
	return s.validateDynamic(ctx, req)
}

// attributesOf is req as upstream's admission sees it. The record is kept
// in req, so that both phases of one request share it (and its audit
// annotations), as upstream's do.
func (s *Server) attributesOf(ctx context.Context, req *AdmissionRequest) admission.Attributes {
	if req.attrs != nil {
		return req.attrs
	}
	res := req.Resource
	sub, reqObj, reqOld := req.Sub, req.Obj, req.Old
	if req.scale {
		// A write of /scale: webhooks see the Scales, as upstream's.
		sub, reqObj, reqOld = "scale", scaleObject(res, req.Obj), scaleObject(res, req.Old)
	}
	gvk := subresourceKind(res, sub)
	for _, o := range []runtime.Object{reqObj, reqOld} {
		if o != nil && (sub == "" || gvk == res.GroupVersionKind()) {
			// The objects carry their kind, as upstream's versioned ones do:
			// a webhook's AdmissionReview names it.
			o.GetObjectKind().SetGroupVersionKind(gvk)
		}
	}
	var opts runtime.Object
	var dry []string
	if req.DryRun {
		dry = []string{metav1.DryRunAll}
	}
	switch req.Operation {
	case Create:
		opts = &metav1.CreateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"}, DryRun: dry}
	case Update:
		opts = &metav1.UpdateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"}, DryRun: dry}
	case Delete:
		opts = &metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}, DryRun: dry}
	}
	info := &user.DefaultInfo{}
	if u, ok := UserFrom(ctx); ok {
		info = &user.DefaultInfo{Name: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}
	}
	// Obj and Old are typed interfaces: a nil one must reach upstream's
	// code as a nil interface, not a typed nil.
	var obj, old runtime.Object
	if reqObj != nil && !reflect.ValueOf(reqObj).IsNil() {
		obj = reqObj
	}
	if reqOld != nil && !reflect.ValueOf(reqOld).IsNil() {
		old = reqOld
	}
	rec := admission.NewAttributesRecord(obj, old, gvk, req.Namespace, req.Name, res.GroupVersionResource(), sub,
		admission.Operation(req.Operation), opts, req.DryRun, info)
	req.attrs = auditedAttributes{Attributes: rec, ctx: ctx}
	return req.attrs
}

// scaleObject is obj's Scale, or a nil interface for no obj.
func scaleObject(res *registry.Resource, obj runtime.Object) runtime.Object {
	if sc := scaleOfResource(res, obj); sc != nil {
		return sc
	}
	return nil
}

// subresourceKind is the kind a write of res's subresource sub carries.
func subresourceKind(res *registry.Resource, sub string) schema.GroupVersionKind {
	switch sub {
	case "eviction":
		return policyv1.SchemeGroupVersion.WithKind("Eviction")
	case "scale":
		return autoscalingv1.SchemeGroupVersion.WithKind("Scale")
	case "binding":
		return corev1.SchemeGroupVersion.WithKind("Binding")
	case "exec":
		return corev1.SchemeGroupVersion.WithKind("PodExecOptions")
	case "attach":
		return corev1.SchemeGroupVersion.WithKind("PodAttachOptions")
	case "portforward":
		return corev1.SchemeGroupVersion.WithKind("PodPortForwardOptions")
	}
	return res.GroupVersionKind()
}

// auditedAttributes sends the annotations admission adds (a webhook's
// patch, a policy's audit annotations) to the request's audit record.
type auditedAttributes struct {
	admission.Attributes
	ctx context.Context
}

func (a auditedAttributes) AddAnnotation(key, value string) error {
	if err := a.Attributes.AddAnnotation(key, value); err != nil {
		return err
	}
	AnnotateAudit(a.ctx, key, value)
	return nil
}

func (a auditedAttributes) AddAnnotationWithLevel(key, value string, level auditinternal.Level) error {
	if err := a.Attributes.AddAnnotationWithLevel(key, value, level); err != nil {
		return err
	}
	AnnotateAudit(a.ctx, key, value)
	return nil
}

// withWarnings lets upstream's plugins send warnings (warning.AddWarning)
// to the client, through the request's notes.
func withWarnings(ctx context.Context) context.Context {
	return warning.WithWarningRecorder(ctx, notesRecorder{ctx})
}

type notesRecorder struct{ ctx context.Context }

func (r notesRecorder) AddWarning(_, text string) { AddWarning(r.ctx, text) }

// objectInterfaces lets upstream's admission create, convert and map the
// server's objects: a webhook that asks for another version of the same
// resource (matchPolicy Equivalent) gets the object converted through
// its stored form.
type objectInterfaces struct{ s *Server }

func (o objectInterfaces) GetObjectCreater() runtime.ObjectCreater     { return o }
func (o objectInterfaces) GetObjectTyper() runtime.ObjectTyper         { return o }
func (o objectInterfaces) GetObjectDefaulter() runtime.ObjectDefaulter { return o }
func (o objectInterfaces) GetObjectConvertor() runtime.ObjectConvertor { return o }
func (o objectInterfaces) GetEquivalentResourceMapper() runtime.EquivalentResourceMapper {
	return o
}

// New returns an empty object of kind.
func (o objectInterfaces) New(kind schema.GroupVersionKind) (runtime.Object, error) {
	sv := o.s.lookupKind(kind)
	if sv == nil {
		// Not a resource: a subresource's kind (Scale, PodExecOptions).
		return scheme.Scheme.New(kind)
	}
	obj := sv.res.New()
	obj.GetObjectKind().SetGroupVersionKind(kind)
	return obj, nil
}

// ObjectKinds returns the kind obj carries, or the one its Go type is
// served as.
func (o objectInterfaces) ObjectKinds(obj runtime.Object) ([]schema.GroupVersionKind, bool, error) {
	if gvk := obj.GetObjectKind().GroupVersionKind(); !gvk.Empty() {
		return []schema.GroupVersionKind{gvk}, false, nil
	}
	return nil, false, runtime.NewNotRegisteredErrForType("skiff", reflect.TypeOf(obj))
}

func (o objectInterfaces) Recognizes(gvk schema.GroupVersionKind) bool {
	return o.s.lookupKind(gvk) != nil
}

// Default applies the served version's defaults, as upstream defaults a
// webhook's patched object.
func (o objectInterfaces) Default(obj runtime.Object) {
	if sv := o.s.lookupKind(obj.GetObjectKind().GroupVersionKind()); sv != nil && sv.res.Strategy.Default != nil {
		sv.res.Strategy.Default(obj)
	}
}

// Convert copies in into out, through the stored version when their
// kinds differ: only versions of one resource convert into each other.
func (o objectInterfaces) Convert(in, out, _ any) error {
	src, ok1 := in.(runtime.Object)
	dst, ok2 := out.(runtime.Object)
	if !ok1 || !ok2 {
		return fmt.Errorf("cannot convert %T to %T", in, out)
	}
	from, to := src.GetObjectKind().GroupVersionKind(), dst.GetObjectKind().GroupVersionKind()
	if !to.Empty() && from != to {
		a, b := o.s.lookupKind(from), o.s.lookupKind(to)
		if a == nil || b == nil || a.prefix != b.prefix {
			return fmt.Errorf("cannot convert %s to %s", from, to)
		}
		stored, err := a.toStored(src)
		if err != nil {
			return err
		}
		if src, err = b.fromStored(stored); err != nil {
			return err
		}
		src.GetObjectKind().SetGroupVersionKind(to)
	}
	return copyObject(src, dst)
}

// copyObject sets dst, of the same Go type as src, to src. An
// unstructured src also fills a typed dst of its kind: a mutating
// admission policy's apply configuration returns the merged object
// unstructured.
func copyObject(src, dst runtime.Object) error {
	su, srcUnstructured := src.(*unstructured.Unstructured)
	if u, ok := dst.(*unstructured.Unstructured); ok {
		if !srcUnstructured {
			return fmt.Errorf("cannot convert %T to %T", src, dst)
		}
		u.SetUnstructuredContent(su.DeepCopy().UnstructuredContent())
		return nil
	}
	if srcUnstructured {
		gvk := dst.GetObjectKind().GroupVersionKind()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(su.UnstructuredContent(), dst); err != nil {
			return fmt.Errorf("cannot convert %s to %T: %w", su.GroupVersionKind(), dst, err)
		}
		if !gvk.Empty() {
			dst.GetObjectKind().SetGroupVersionKind(gvk)
		}
		return nil
	}
	sv, dv := reflect.ValueOf(src), reflect.ValueOf(dst)
	if sv.Type() != dv.Type() || sv.Kind() != reflect.Pointer {
		return fmt.Errorf("cannot convert %T to %T", src, dst)
	}
	dv.Elem().Set(reflect.ValueOf(src.DeepCopyObject()).Elem())
	return nil
}

func (o objectInterfaces) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	from := in.GetObjectKind().GroupVersionKind()
	to, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{from})
	if !ok {
		return nil, fmt.Errorf("cannot convert %s to %v", from, gv)
	}
	out, err := o.New(to)
	if err != nil {
		return nil, err
	}
	return out, o.Convert(in, out, nil)
}

func (o objectInterfaces) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

// EquivalentResourcesFor returns the resources stored as resource is: its
// other versions.
func (o objectInterfaces) EquivalentResourcesFor(resource schema.GroupVersionResource, sub string) []schema.GroupVersionResource {
	sv, ok := o.s.lookup(resource)
	if !ok {
		return nil
	}
	if sv.prefix == "" {
		return []schema.GroupVersionResource{resource} // not stored: no other versions
	}
	var out []schema.GroupVersionResource
	for gvr, other := range o.s.resources {
		if other.prefix == sv.prefix {
			out = append(out, gvr)
		}
	}
	if ext := o.s.ext.Load(); ext != nil {
		for gvr, other := range ext.resources {
			if other.prefix == sv.prefix {
				out = append(out, gvr)
			}
		}
	}
	return out
}

// KindFor returns the kind resource/sub carries.
func (o objectInterfaces) KindFor(resource schema.GroupVersionResource, sub string) schema.GroupVersionKind {
	sv, ok := o.s.lookup(resource)
	if !ok {
		return schema.GroupVersionKind{}
	}
	return subresourceKind(sv.res, sub)
}

// dynamicError makes sure what the dynamic admission returns reaches the
// client as an API status.
func dynamicError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewInternalError(err)
}
