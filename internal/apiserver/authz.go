package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Attributes are what an authorizer decides on, in upstream's terms.
type Attributes struct {
	User        *User
	Verb        string
	Namespace   string
	APIGroup    string
	APIVersion  string
	Resource    string
	Subresource string
	Name        string
	// Path is set for non-resource requests ("/metrics").
	Path string
	// ResourceRequest is false for non-resource paths.
	ResourceRequest bool
	// LabelSelector is a list's or watch's label selector, nil when it
	// has none or it does not parse (upstream's AuthorizeWithSelectors):
	// the Node authorizer lets a node list what is labelled for it.
	LabelSelector labels.Selector
	// FieldSelector is a list's or watch's field selector, nil as
	// LabelSelector is: the Node authorizer lets a node list its own
	// PodCertificateRequests (spec.nodeName=<node>).
	FieldSelector fields.Selector
}

// Authorizer decides whether a request may proceed. allowed=false with a
// reason gives the client 403 Forbidden with that reason.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (allowed bool, reason string, err error)
}

// AlwaysAllow lets every authenticated user do everything. It stands until
// RBAC is enforced.
type AlwaysAllow struct{}

func (AlwaysAllow) Authorize(context.Context, Attributes) (bool, string, error) { return true, "", nil }

// RulesFor allows every verb on everything, as upstream's AlwaysAllow
// authorizer lists it.
func (AlwaysAllow) RulesFor(context.Context, *User, string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	all := []string{"*"}
	return []authorizationv1.ResourceRule{{Verbs: all, APIGroups: all, Resources: all}},
		[]authorizationv1.NonResourceRule{{Verbs: all, NonResourceURLs: all}}, false, nil
}

// RuleLister is implemented by an Authorizer that can list what a user may
// do in a namespace (selfsubjectrulesreviews, `kubectl auth can-i
// --list`). incomplete is true when the rules may leave out some of what
// Authorize would allow. An Authorizer without it answers such reviews
// with incomplete=true and no rules.
type RuleLister interface {
	RulesFor(ctx context.Context, u *User, namespace string) (rules []authorizationv1.ResourceRule,
		nonResource []authorizationv1.NonResourceRule, incomplete bool, err error)
}

func (s *Server) authorize(r *http.Request, u *User, info requestInfo) error {
	a := requestAttributes(r, u, info)
	ok, reason, err := s.cfg.Authorizer.Authorize(r.Context(), a)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("authorization: %w", err))
	}
	if !ok {
		gr := schema.GroupResource{}
		if info.isResource {
			gr = schema.GroupResource{Group: info.group, Resource: info.resource}
		}
		return apierrors.NewForbidden(gr, info.name, errors.New(forbiddenMessage(a, reason)))
	}
	return nil
}

// requestAttributes are what the authorizer decides a request on.
func requestAttributes(r *http.Request, u *User, info requestInfo) Attributes {
	a := Attributes{
		User: u, Verb: info.verb, Namespace: info.namespace, APIGroup: info.group,
		APIVersion: info.version, Resource: info.resource, Subresource: info.sub,
		Name: info.name, Path: r.URL.Path, ResourceRequest: info.isResource,
	}
	if !info.isResource {
		a.Verb = map[string]string{http.MethodGet: "get", http.MethodHead: "get", http.MethodPost: "post",
			http.MethodPut: "put", http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	}
	if a.ResourceRequest && (a.Verb == "list" || a.Verb == "watch") {
		if a.Name == "" {
			a.Name = selectedName(r)
		}
		if s := r.URL.Query().Get("labelSelector"); s != "" {
			if sel, err := labels.Parse(s); err == nil {
				a.LabelSelector = sel
			}
		}
		if s := r.URL.Query().Get("fieldSelector"); s != "" {
			if sel, err := fields.ParseSelector(s); err == nil {
				a.FieldSelector = sel
			}
		}
	}
	return a
}

// selectedName is the name a list or watch selects with the field
// selector metadata.name=<name>: upstream authorizes such a request as
// one for that name, so that a Role limited to resourceNames lets its
// holder watch the objects it names (an informer on one ConfigMap).
func selectedName(r *http.Request) string {
	sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		return ""
	}
	name, ok := sel.RequiresExactMatch("metadata.name")
	if !ok || len(path.IsValidPathSegmentName(name)) > 0 {
		return ""
	}
	return name
}

// forbiddenMessage is upstream's account of a denied request, which
// clients and tests match: what the user cannot do, where, and the
// authorizer's reason when it gives one.
func forbiddenMessage(a Attributes, reason string) string {
	name := ""
	if a.User != nil {
		name = a.User.Name
	}
	var msg string
	switch {
	case !a.ResourceRequest:
		msg = fmt.Sprintf("User %q cannot %s path %q", name, a.Verb, a.Path)
	default:
		res := a.Resource
		if a.Subresource != "" {
			res += "/" + a.Subresource
		}
		if a.Namespace != "" {
			msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", name, a.Verb, res, a.APIGroup, a.Namespace)
		} else {
			msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", name, a.Verb, res, a.APIGroup)
		}
	}
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}
