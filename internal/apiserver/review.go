package apiserver

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// The reviews are virtual resources (registry.Resource.Create) that answer
// a question through this server's own authenticator and authorizer:
//
//   - selfsubjectreviews (authentication.k8s.io/v1): who am I — `kubectl
//     auth whoami`;
//   - selfsubjectaccessreviews, selfsubjectrulesreviews: may I, what may I —
//     `kubectl auth can-i [--list]`;
//   - subjectaccessreviews, localsubjectaccessreviews: may this user;
//   - tokenreviews (tokenreview.go): who is this bearer token.

var createOnly = []string{"create"}

// reviewResources returns the review descriptors. Their Create funcs use
// s.cfg.Authorizer, so s.cfg must be filled in first.
func (s *Server) reviewResources() []*registry.Resource {
	authn, authz := authenticationv1.SchemeGroupVersion, authorizationv1.SchemeGroupVersion
	return []*registry.Resource{
		s.tokenReviewResource(),
		{
			GroupVersion: authn, Name: "selfsubjectreviews", Singular: "selfsubjectreview", Kind: "SelfSubjectReview",
			New:     func() runtime.Object { return &authenticationv1.SelfSubjectReview{} },
			NewList: func() runtime.Object { return &metav1.List{} },
			Verbs:   createOnly, Create: selfSubjectReview,
		},
		{
			GroupVersion: authz, Name: "localsubjectaccessreviews", Singular: "localsubjectaccessreview", Kind: "LocalSubjectAccessReview",
			Namespaced: true,
			New:        func() runtime.Object { return &authorizationv1.LocalSubjectAccessReview{} },
			NewList:    func() runtime.Object { return &metav1.List{} },
			Verbs:      createOnly, Create: s.localSubjectAccessReview,
			Strategy: registry.Strategy{Validate: func(obj runtime.Object) field.ErrorList {
				r := obj.(*authorizationv1.LocalSubjectAccessReview)
				return validateLocalSAR(r)
			}},
		},
		{
			GroupVersion: authz, Name: "selfsubjectaccessreviews", Singular: "selfsubjectaccessreview", Kind: "SelfSubjectAccessReview",
			New:     func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} },
			NewList: func() runtime.Object { return &metav1.List{} },
			Verbs:   createOnly, Create: s.selfSubjectAccessReview,
			Strategy: registry.Strategy{Validate: func(obj runtime.Object) field.ErrorList {
				r := obj.(*authorizationv1.SelfSubjectAccessReview)
				errs := metaMustBeEmpty(r.ObjectMeta)
				return append(errs, validateAttributes(r.Spec.ResourceAttributes, r.Spec.NonResourceAttributes)...)
			}},
		},
		{
			GroupVersion: authz, Name: "selfsubjectrulesreviews", Singular: "selfsubjectrulesreview", Kind: "SelfSubjectRulesReview",
			New:     func() runtime.Object { return &authorizationv1.SelfSubjectRulesReview{} },
			NewList: func() runtime.Object { return &metav1.List{} },
			Verbs:   createOnly, Create: s.selfSubjectRulesReview,
			Strategy: registry.Strategy{Validate: func(obj runtime.Object) field.ErrorList {
				return metaMustBeEmpty(obj.(*authorizationv1.SelfSubjectRulesReview).ObjectMeta)
			}},
		},
		{
			GroupVersion: authz, Name: "subjectaccessreviews", Singular: "subjectaccessreview", Kind: "SubjectAccessReview",
			New:     func() runtime.Object { return &authorizationv1.SubjectAccessReview{} },
			NewList: func() runtime.Object { return &metav1.List{} },
			Verbs:   createOnly, Create: s.subjectAccessReview,
			Strategy: registry.Strategy{Validate: func(obj runtime.Object) field.ErrorList {
				r := obj.(*authorizationv1.SubjectAccessReview)
				errs := metaMustBeEmpty(r.ObjectMeta)
				errs = append(errs, validateAttributes(r.Spec.ResourceAttributes, r.Spec.NonResourceAttributes)...)
				return append(errs, validateSubject(r.Spec)...)
			}},
		},
	}
}

// requestUser is the authenticated user of a review's request.
func requestUser(ctx context.Context) (*User, error) {
	u, ok := UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("no user in the request context"))
	}
	return u, nil
}

// selfSubjectReview answers with the requesting user, as upstream.
func selfSubjectReview(ctx context.Context, _ runtime.Object) (runtime.Object, error) {
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	info := authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	return &authenticationv1.SelfSubjectReview{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Now())},
		Status:     authenticationv1.SelfSubjectReviewStatus{UserInfo: info},
	}, nil
}

func (s *Server) selfSubjectAccessReview(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	r := obj.(*authorizationv1.SelfSubjectAccessReview)
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	r.Status = s.accessReview(ctx, u, r.Spec.ResourceAttributes, r.Spec.NonResourceAttributes)
	return r, nil
}

func (s *Server) subjectAccessReview(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	r := obj.(*authorizationv1.SubjectAccessReview)
	r.Status = s.accessReview(ctx, subjectOf(r.Spec), r.Spec.ResourceAttributes, r.Spec.NonResourceAttributes)
	return r, nil
}

func (s *Server) localSubjectAccessReview(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	r := obj.(*authorizationv1.LocalSubjectAccessReview)
	r.Status = s.accessReview(ctx, subjectOf(r.Spec), r.Spec.ResourceAttributes, nil)
	return r, nil
}

// subjectOf is the user a SubjectAccessReview asks about.
func subjectOf(spec authorizationv1.SubjectAccessReviewSpec) *User {
	u := &User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
	if len(spec.Extra) > 0 {
		u.Extra = map[string][]string{}
		for k, v := range spec.Extra {
			u.Extra[k] = v
		}
	}
	return u
}

// accessReview asks the authorizer whether u may do what the attributes
// say. An authorizer error is reported in the status, not as a failed
// request, as upstream.
func (s *Server) accessReview(ctx context.Context, u *User, res *authorizationv1.ResourceAttributes,
	nonRes *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	a := Attributes{User: u}
	if res != nil {
		a.Verb, a.Namespace, a.APIGroup, a.APIVersion = res.Verb, res.Namespace, res.Group, res.Version
		a.Resource, a.Subresource, a.Name, a.ResourceRequest = res.Resource, res.Subresource, res.Name, true
	} else if nonRes != nil {
		a.Verb, a.Path = nonRes.Verb, nonRes.Path
	}
	allowed, reason, err := s.cfg.Authorizer.Authorize(ctx, a)
	st := authorizationv1.SubjectAccessReviewStatus{Allowed: allowed && err == nil, Reason: reason}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}

func (s *Server) selfSubjectRulesReview(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	r := obj.(*authorizationv1.SelfSubjectRulesReview)
	if r.Spec.Namespace == "" {
		return nil, apierrors.NewBadRequest("no namespace on request")
	}
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	lister, ok := s.cfg.Authorizer.(RuleLister)
	if !ok {
		r.Status = authorizationv1.SubjectRulesReviewStatus{Incomplete: true, EvaluationError: "the authorizer cannot list rules"}
		return r, nil
	}
	rules, nonRes, incomplete, err := lister.RulesFor(ctx, u, r.Spec.Namespace)
	r.Status = authorizationv1.SubjectRulesReviewStatus{ResourceRules: rules, NonResourceRules: nonRes, Incomplete: incomplete}
	if r.Status.ResourceRules == nil {
		r.Status.ResourceRules = []authorizationv1.ResourceRule{}
	}
	if r.Status.NonResourceRules == nil {
		r.Status.NonResourceRules = []authorizationv1.NonResourceRule{}
	}
	if err != nil {
		r.Status.EvaluationError = err.Error()
	}
	return r, nil
}

// metaMustBeEmpty is upstream's rule for the cluster-wide reviews: they
// name no object.
func metaMustBeEmpty(m metav1.ObjectMeta) field.ErrorList {
	m.ManagedFields = nil
	if apiequality.Semantic.DeepEqual(metav1.ObjectMeta{}, m) {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("metadata"), m, "must be empty")}
}

// validateAttributes requires exactly one of the two attribute sets.
func validateAttributes(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) field.ErrorList {
	spec := field.NewPath("spec")
	switch {
	case res != nil && nonRes != nil:
		return field.ErrorList{field.Invalid(spec.Child("nonResourceAttributes"), nonRes, "cannot be specified in combination with resourceAttributes")}
	case res == nil && nonRes == nil:
		return field.ErrorList{field.Invalid(spec.Child("resourceAttributes"), nonRes, "exactly one of nonResourceAttributes or resourceAttributes must be specified")}
	}
	return nil
}

// validateSubject requires a user or a group to ask about.
func validateSubject(spec authorizationv1.SubjectAccessReviewSpec) field.ErrorList {
	if spec.User == "" && len(spec.Groups) == 0 {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "user"), spec.User, "at least one of user or group must be specified")}
	}
	return nil
}

// validateLocalSAR: the review lives in the namespace it asks about, and
// asks about resources only.
func validateLocalSAR(r *authorizationv1.LocalSubjectAccessReview) field.ErrorList {
	m := r.ObjectMeta
	m.Namespace = ""
	errs := metaMustBeEmpty(m)
	spec := field.NewPath("spec")
	if r.Spec.ResourceAttributes == nil {
		errs = append(errs, field.Required(spec.Child("resourceAttributes"), ""))
	} else if r.Spec.ResourceAttributes.Namespace != r.Namespace {
		errs = append(errs, field.Invalid(spec.Child("resourceAttributes", "namespace"), r.Spec.ResourceAttributes.Namespace, "must match metadata.namespace"))
	}
	if r.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(spec.Child("nonResourceAttributes"), r.Spec.NonResourceAttributes, "disallowed on this kind of request"))
	}
	return append(errs, validateSubject(r.Spec)...)
}
