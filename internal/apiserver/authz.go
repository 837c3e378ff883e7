package apiserver

import (
	"context"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

func (s *Server) authorize(r *http.Request, u *User, info requestInfo) error {
	a := Attributes{
		User: u, Verb: info.verb, Namespace: info.namespace, APIGroup: info.group,
		APIVersion: info.version, Resource: info.resource, Subresource: info.sub,
		Name: info.name, Path: r.URL.Path, ResourceRequest: info.isResource,
	}
	if !info.isResource {
		a.Verb = map[string]string{http.MethodGet: "get", http.MethodHead: "get", http.MethodPost: "post",
			http.MethodPut: "put", http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	}
	ok, reason, err := s.cfg.Authorizer.Authorize(r.Context(), a)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("authorization: %w", err))
	}
	if !ok {
		if !info.isResource {
			return apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("%s", reason))
		}
		return apierrors.NewForbidden(schema.GroupResource{Group: info.group, Resource: info.resource}, info.name,
			fmt.Errorf("User %q cannot %s resource %q in API group %q: %s", u.Name, info.verb, info.resource, info.group, reason))
	}
	return nil
}
