package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Impersonation: a client acts as another user by sending the
// Impersonate-User header (kubectl --as), with Impersonate-Group (--as-group,
// repeated), Impersonate-Uid (--as-uid) and Impersonate-Extra-<key>. The
// authenticated user must be allowed to impersonate each part, and the
// request then proceeds, authorization included, as the impersonated user.
//
// As upstream since 1.36 (the ConstrainedImpersonation feature, on by
// default), the constrained modes are tried first, then the legacy one:
//
//   - associated-node: a service account whose token is bound to a pod on
//     node N acting as system:node:N (username only);
//   - arbitrary-node: acting as any system:node:<name> (username only);
//   - serviceaccount: acting as system:serviceaccount:<ns>:<name> (username
//     only);
//   - user-info: acting as any other user, with groups, uid and extra (never
//     the group system:masters).
//
// A constrained mode needs two permissions: the verb
// "impersonate-on:<mode>:<verb>" on what the request itself does (its
// resource, namespace and name, or its path), and "impersonate:<mode>" on
// the identity, in the authentication.k8s.io group (users, groups, uids,
// userextras/<key>, serviceaccounts in their namespace, nodes). The legacy
// mode needs the verb "impersonate" on users, groups and serviceaccounts in
// the core group, and on uids and userextras/<key> in
// authentication.k8s.io. When every mode refuses, the client gets the first
// refusal, as upstream: for a plain user that is the user-info mode's.
//
// The impersonated user always gets system:authenticated (system:anonymous
// gets system:unauthenticated), and a service account the service account
// groups when no group is asked for.

// The impersonation request headers (authentication/v1 names them).
const (
	impersonateUserHeader        = "Impersonate-User"
	impersonateGroupHeader       = "Impersonate-Group"
	impersonateUIDHeader         = "Impersonate-Uid"
	impersonateExtraHeaderPrefix = "Impersonate-Extra-"
)

const (
	groupAuthenticated   = "system:authenticated"
	groupUnauthenticated = "system:unauthenticated"
	groupMasters         = "system:masters"
	groupNodes           = "system:nodes"
	userAnonymous        = "system:anonymous"
	serviceAccountPrefix = "system:serviceaccount:"
	nodeUserPrefix       = "system:node:"
	// nodeNameExtra is the extra a service account token bound to a pod
	// carries: the pod's node.
	nodeNameExtra = "authentication.kubernetes.io/node-name"
)

// Impersonation is recorded in the context of a request that impersonates
// another user: UserFrom then returns the impersonated user, and this the
// authenticated one. An audit record has them as user and
// impersonatedUser.
type Impersonation struct {
	// Impersonator is the user who authenticated.
	Impersonator *User
	// Constraint is the verb that allowed the impersonation in a
	// constrained mode ("impersonate:user-info", ...), "" in the legacy
	// mode (the audit event's impersonationConstraint).
	Constraint string
}

type impersonationKey struct{}

// ImpersonationFrom returns how the request's user came to be, when the
// request impersonates.
func ImpersonationFrom(ctx context.Context) (Impersonation, bool) {
	im, ok := ctx.Value(impersonationKey{}).(Impersonation)
	return im, ok
}

// impersonate returns the user the request acts as: requestor when it
// carries no impersonation headers, else the impersonated user, which
// requestor must be allowed to become (403 otherwise). When it
// impersonates, the returned request records the impersonation in its
// context and no longer carries the headers (they must not reach a
// proxied backend).
func (s *Server) impersonate(r *http.Request, requestor *User, info requestInfo) (*http.Request, *User, error) {
	wanted, err := wantedUser(r.Header)
	if err != nil || wanted == nil {
		return r, requestor, err
	}
	req := requestAttributes(r, requestor, info)
	var first error
	for _, m := range impersonationModes {
		if m.applies != nil && !m.applies(wanted, requestor) {
			continue
		}
		u, err := s.impersonateAs(r.Context(), m, wanted, requestor, req)
		if err == nil {
			constraint := ""
			if m.name != "" {
				constraint = "impersonate:" + m.name
			}
			r = r.WithContext(context.WithValue(r.Context(), impersonationKey{}, Impersonation{Impersonator: requestor, Constraint: constraint}))
			// r shares its header map with the caller's request (the
			// in-process transport's client): the headers are dropped
			// from a copy.
			r.Header = r.Header.Clone()
			for h := range r.Header {
				if h == impersonateUserHeader || h == impersonateGroupHeader || h == impersonateUIDHeader ||
					strings.HasPrefix(h, impersonateExtraHeaderPrefix) {
					r.Header.Del(h)
				}
			}
			s.log.Debug("impersonating", "user", requestor.Name, "as", u.Name, "constraint", constraint)
			return r, u, nil
		}
		if first == nil {
			first = err
		}
	}
	return r, nil, first
}

// wantedUser reads the impersonation headers: nil when there are none.
func wantedUser(h http.Header) (*User, error) {
	u := &User{Name: h.Get(impersonateUserHeader), UID: h.Get(impersonateUIDHeader), Groups: h.Values(impersonateGroupHeader)}
	extraHeaders := false
	for name, values := range h {
		key, ok := strings.CutPrefix(name, impersonateExtraHeaderPrefix)
		if !ok {
			continue
		}
		extraHeaders = true
		if len(values) == 0 {
			continue
		}
		// Header names are case-insensitive: the key is lowercased, and
		// percent-encoded for what a header name cannot hold.
		key = strings.ToLower(key)
		if k, err := url.PathUnescape(key); err == nil {
			key = k
		}
		if u.Extra == nil {
			u.Extra = map[string][]string{}
		}
		u.Extra[key] = append(u.Extra[key], values...)
	}
	if u.Name == "" {
		if u.UID != "" || len(u.Groups) > 0 || extraHeaders {
			// Upstream prints its user.DefaultInfo with %#v.
			return nil, apierrors.NewBadRequest(fmt.Sprintf("requested &user.DefaultInfo{Name:%q, UID:%q, Groups:%#v, Extra:%#v} without impersonating a user name",
				u.Name, u.UID, u.Groups, u.Extra))
		}
		return nil, nil
	}
	return u, nil
}

// impersonationMode is one way of being allowed to impersonate. name is
// "" for the legacy mode.
type impersonationMode struct {
	name string
	// applies says whether the mode can grant wanted to requestor; nil:
	// always.
	applies func(wanted, requestor *User) bool
}

var impersonationModes = []impersonationMode{
	{name: "associated-node", applies: func(wanted, requestor *User) bool {
		node, ok := nodeUser(wanted.Name)
		_, _, sa := serviceAccountUser(requestor.Name)
		return onlyName(wanted) && ok && sa && len(requestor.Extra[nodeNameExtra]) == 1 && requestor.Extra[nodeNameExtra][0] == node
	}},
	{name: "arbitrary-node", applies: func(wanted, _ *User) bool {
		_, ok := nodeUser(wanted.Name)
		return onlyName(wanted) && ok
	}},
	{name: "serviceaccount", applies: func(wanted, _ *User) bool {
		_, _, ok := serviceAccountUser(wanted.Name)
		return onlyName(wanted) && ok
	}},
	{name: "user-info", applies: func(wanted, _ *User) bool {
		_, node := nodeUser(wanted.Name)
		_, _, sa := serviceAccountUser(wanted.Name)
		return !node && !sa
	}},
	{}, // legacy
}

// impersonateAs checks, in mode m, every permission that making wanted
// needs, and returns the user the request then acts as.
func (s *Server) impersonateAs(ctx context.Context, m impersonationMode, wanted, requestor *User, req Attributes) (*User, error) {
	verb, group := "impersonate", ""
	if m.name != "" {
		verb, group = "impersonate:"+m.name, "authentication.k8s.io"
	}
	as := requestor
	if m.name == "associated-node" {
		// The authorizer sees which extras the requestor has, not their
		// values: it decides for every node at once.
		keys := make([]string, 0, len(requestor.Extra))
		for k := range requestor.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		as = &User{Name: requestor.Name, UID: requestor.UID, Groups: requestor.Groups,
			Extra: map[string][]string{"authentication.kubernetes.io/associated-node-keys": keys}}
	}
	attrs := func(group, resource string) Attributes {
		return Attributes{User: as, Verb: verb, APIGroup: group, APIVersion: "v1", Resource: resource, ResourceRequest: true}
	}
	check := func(a Attributes) error { return s.allowedOrForbidden(ctx, a) }
	if m.name != "" {
		on := req
		on.Verb = "impersonate-on:" + m.name + ":" + req.Verb
		on.User = as
		if err := s.allowedOrForbidden(ctx, on); err != nil {
			return nil, err
		}
	}

	got := &User{Name: wanted.Name, UID: wanted.UID, Groups: wanted.Groups, Extra: wanted.Extra}
	name := attrs(group, "users")
	name.Name = wanted.Name
	if node, ok := nodeUser(wanted.Name); ok && m.name != "" {
		name.Resource, name.Name = "nodes", node
		if m.name == "associated-node" {
			name.Name = "*"
		}
		if len(wanted.Groups) > 0 {
			return nil, impersonationForbidden(name, fmt.Sprintf("when impersonating a node, cannot impersonate groups %q", wanted.Groups))
		}
		got.Groups = []string{groupNodes}
	}
	if ns, sa, ok := serviceAccountUser(wanted.Name); ok {
		name.Resource, name.Namespace, name.Name = "serviceaccounts", ns, sa
		if m.name != "" && len(wanted.Groups) > 0 {
			return nil, impersonationForbidden(name, fmt.Sprintf("when impersonating a service account, cannot impersonate groups %q", wanted.Groups))
		}
		if len(wanted.Groups) == 0 {
			got.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns}
		}
	}
	if err := check(name); err != nil {
		return nil, err
	}
	if wanted.UID != "" {
		uid := attrs("authentication.k8s.io", "uids")
		uid.Name = wanted.UID
		if err := check(uid); err != nil {
			return nil, err
		}
	}
	if err := checkGroups(m, wanted.Groups, attrs(group, "groups"), check); err != nil {
		return nil, err
	}
	if err := checkExtra(m, wanted.Extra, attrs("authentication.k8s.io", "userextras"), check); err != nil {
		return nil, err
	}
	switch {
	case got.Name == userAnonymous:
		got.Groups = withGroup(got.Groups, groupUnauthenticated)
	case !slices.Contains(got.Groups, groupUnauthenticated):
		got.Groups = withGroup(got.Groups, groupAuthenticated)
	}
	return got, nil
}

// manyChecks is how many groups or extra values make a constrained mode
// ask for all of them ("*") at once before asking one by one.
const manyChecks = 4

func checkGroups(m impersonationMode, groups []string, a Attributes, check func(Attributes) error) error {
	if len(groups) == 0 {
		return nil
	}
	if m.name != "" {
		if slices.Contains(groups, "") {
			return impersonationForbidden(a, "impersonating the empty string group is not allowed")
		}
		if slices.Contains(groups, groupMasters) {
			a.Name = groupMasters
			return impersonationForbidden(a, "impersonating the system:masters group is not allowed")
		}
		if len(groups) >= manyChecks {
			a.Name = "*"
			if check(a) == nil {
				return nil
			}
		}
	}
	for _, g := range groups {
		a.Name = g
		if err := check(a); err != nil {
			return err
		}
	}
	return nil
}

func checkExtra(m impersonationMode, extra map[string][]string, a Attributes, check func(Attributes) error) error {
	if len(extra) == 0 {
		return nil
	}
	keys := make([]string, 0, len(extra))
	values := 0
	for k, vs := range extra {
		keys = append(keys, k)
		values += len(vs)
	}
	sort.Strings(keys)
	if m.name != "" {
		if err := validExtra(extra, keys); err != nil {
			return impersonationForbidden(a, err.Error())
		}
		if len(extra) >= manyChecks || values >= manyChecks {
			a.Subresource, a.Name = "*", "*"
			if check(a) == nil {
				return nil
			}
		}
	}
	for _, k := range keys {
		for _, v := range extra[k] {
			a.Subresource, a.Name = k, v
			if err := check(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// validExtra is what a constrained mode requires of extra keys and values.
func validExtra(extra map[string][]string, keys []string) error {
	fp := field.NewPath("extra", "key")
	for _, k := range keys {
		if k == "" {
			return errors.New("impersonating the empty string key in extra is not allowed")
		}
		if err := utilvalidation.IsDomainPrefixedPath(fp, k).ToAggregate(); err != nil {
			return fmt.Errorf("impersonating an invalid key in extra is not allowed: %w", err)
		}
		if k != strings.ToLower(k) {
			return fmt.Errorf("impersonating a non-lowercase key in extra is not allowed: %q", k)
		}
		if len(extra[k]) == 0 {
			return errors.New("impersonating empty values in extra is not allowed")
		}
		if slices.Contains(extra[k], "") {
			return errors.New("impersonating the empty string value in extra is not allowed")
		}
	}
	return nil
}

// allowedOrForbidden asks the authorizer, and gives upstream's 403 for
// a refusal, with the authorizer's error and reason.
func (s *Server) allowedOrForbidden(ctx context.Context, a Attributes) error {
	ok, reason, err := s.cfg.Authorizer.Authorize(ctx, a)
	switch {
	case ok:
		return nil
	case err != nil && reason != "":
		reason = fmt.Sprintf("%v: %s", err, reason)
	case err != nil:
		reason = err.Error()
	}
	return impersonationForbidden(a, reason)
}

// impersonationForbidden is upstream's 403 for a refused impersonation:
// the message of any refused request, for the impersonation attributes.
func impersonationForbidden(a Attributes, reason string) error {
	gr := schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}
	return apierrors.NewForbidden(gr, a.Name, errors.New(forbiddenMessage(a, reason)))
}

// serviceAccountUser splits system:serviceaccount:<ns>:<name>, both valid
// names.
func serviceAccountUser(name string) (namespace, sa string, ok bool) {
	rest, ok := strings.CutPrefix(name, serviceAccountPrefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 2 || len(apivalidation.ValidateNamespaceName(parts[0], false)) != 0 ||
		len(apivalidation.ValidateServiceAccountName(parts[1], false)) != 0 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// nodeUser returns the node of system:node:<name>, a valid node name.
func nodeUser(name string) (string, bool) {
	node, ok := strings.CutPrefix(name, nodeUserPrefix)
	if !ok || len(apivalidation.NameIsDNSSubdomain(node, false)) != 0 {
		return "", false
	}
	return node, true
}

func onlyName(u *User) bool { return u.UID == "" && len(u.Groups) == 0 && len(u.Extra) == 0 }

func withGroup(groups []string, g string) []string {
	if slices.Contains(groups, g) {
		return groups
	}
	return append(slices.Clip(groups), g)
}
