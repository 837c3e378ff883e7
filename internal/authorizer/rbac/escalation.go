package rbac

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// ErrEscalation is matched (errors.Is) by every error that refuses to let
// a user grant permissions it does not hold. The API server turns it into
// 403 Forbidden on the Role, ClusterRole or binding, with the error's
// message, as upstream.
var ErrEscalation = errors.New("RBAC escalation")

// EscalationError says what a user tried to grant without holding it.
type EscalationError struct {
	// Missing are the permissions not held, one group and resource (or
	// one URL) each, verbs merged as upstream's message lists them.
	Missing []rbacv1.PolicyRule
	msg     string
}

func (e *EscalationError) Error() string        { return e.msg }
func (e *EscalationError) Is(target error) bool { return target == ErrEscalation }

// fullAuthority is what cluster-admin holds; setting an aggregationRule
// needs it, since the rule can gather anything.
var fullAuthority = []rbacv1.PolicyRule{
	{Verbs: []string{rbacv1.VerbAll}, APIGroups: []string{rbacv1.APIGroupAll}, Resources: []string{rbacv1.ResourceAll}},
	{Verbs: []string{rbacv1.VerbAll}, NonResourceURLs: []string{rbacv1.NonResourceAll}},
}

// ConfirmNoEscalation returns nil when u holds, in namespace (cluster-wide
// when empty), every permission in rules; otherwise an *EscalationError
// listing what is missing, with upstream's message:
//
//	user "u" (groups=["g"]) is attempting to grant RBAC permissions not currently held:
//	{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}
//
// A binding of u that could not be resolved does not stop the check (the
// rules it could resolve may be enough); when they are not, the message
// ends with the resolution errors, as upstream.
func (a *Authorizer) ConfirmNoEscalation(u *User, rules []rbacv1.PolicyRule, namespace string) error {
	owner, resolveErr := a.rulesFor(u, namespace)
	ok, missing := Covers(owner, rules)
	if ok {
		return nil
	}
	missing = compactRules(missing)
	lines := make([]string, 0, len(missing))
	seen := map[string]bool{}
	for _, m := range missing {
		s := compactString(m)
		if !seen[s] {
			seen[s] = true
			lines = append(lines, s)
		}
	}
	sort.Strings(lines)
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s",
		u.Name, u.Groups, strings.Join(lines, "\n"))
	if resolveErr != nil {
		msg += fmt.Sprintf("; resolution errors: %v", []error{resolveErr})
	}
	return &EscalationError{Missing: missing, msg: msg}
}

// ConfirmRole decides whether u may create or update a Role or ClusterRole
// (namespace empty) named name with these rules, as upstream's role
// storage does: a member of system:masters may; so may a user allowed the
// `escalate` verb on it; otherwise u must hold every rule. A ClusterRole
// with an aggregationRule can gather anything, so without `escalate` it
// needs full authority. Upstream also lets through an update that only
// changes what the garbage collector needs (finalizers, owner
// references); that check is the caller's, which sees both objects.
func (a *Authorizer) ConfirmRole(ctx context.Context, u *User, namespace, name string, rules []rbacv1.PolicyRule,
	hasAggregationRule bool) error {
	resource := "clusterroles"
	if namespace != "" {
		resource = "roles"
	}
	if escalationAllowed(u) || a.allowed(ctx, u, "escalate", namespace, resource, name) {
		return nil
	}
	if hasAggregationRule && namespace == "" {
		if err := a.ConfirmNoEscalation(u, fullAuthority, ""); err != nil {
			return &EscalationError{msg: "must have cluster-admin privileges to use the aggregationRule"}
		}
	}
	return a.ConfirmNoEscalation(u, rules, namespace)
}

// ConfirmBinding decides whether u may create or update a RoleBinding in
// bindingNamespace (a ClusterRoleBinding when empty) that refers to ref,
// as upstream: a member of system:masters may; so may a user allowed the
// `bind` verb on the referenced role (resource "roles" or "clusterroles",
// named, in the binding's namespace); otherwise u must hold every
// permission of the referenced role there. A reference to a role that
// does not exist is an apierrors NotFound error, as upstream.
func (a *Authorizer) ConfirmBinding(ctx context.Context, u *User, ref rbacv1.RoleRef, bindingNamespace string) error {
	if escalationAllowed(u) {
		return nil
	}
	var resource string
	switch ref.Kind {
	case "ClusterRole":
		resource = "clusterroles"
	case "Role":
		resource = "roles"
	default:
		return fmt.Errorf("unsupported role reference kind: %q", ref.Kind)
	}
	if a.allowed(ctx, u, "bind", bindingNamespace, resource, ref.Name) {
		return nil
	}
	a.mu.RLock()
	r, err := a.roleFor(&binding{namespace: bindingNamespace, roleRef: ref})
	a.mu.RUnlock()
	if err != nil {
		return err
	}
	return a.ConfirmNoEscalation(u, r.rules, bindingNamespace)
}

// escalationAllowed is upstream's: system:masters may grant anything.
func escalationAllowed(u *User) bool { return contains(u.Groups, SystemMasters) }

// allowed asks this authorizer about verb on an RBAC resource. Upstream
// asks the whole authorizer chain; with Node,RBAC the node authorizer
// never grants bind or escalate, so asking RBAC alone is the same.
func (a *Authorizer) allowed(ctx context.Context, u *User, verb, namespace, resource, name string) bool {
	ok, _, _ := a.Authorize(ctx, Attributes{User: u, Verb: verb, Namespace: namespace,
		APIGroup: rbacv1.GroupName, APIVersion: "*", Resource: resource, Name: name, ResourceRequest: true})
	return ok
}

// Covers reports whether the owner rules hold every permission of the
// servant rules, with upstream's semantics: each servant rule is broken
// down to one group, resource, verb and name (or one URL and verb), and
// each piece must be covered by a single owner rule. "*" covers anything
// in its field; "*/sub" covers "x/sub"; an owner rule without
// resourceNames covers any name, one with names only those names (never
// a piece without a name); a URL ending in "*" covers those it prefixes.
// The uncovered pieces are returned.
func Covers(owner, servant []rbacv1.PolicyRule) (bool, []rbacv1.PolicyRule) {
	var missing []rbacv1.PolicyRule
	for _, s := range servant {
		for _, piece := range breakdown(s) {
			covered := false
			for i := range owner {
				if ruleCovers(&owner[i], &piece) {
					covered = true
					break
				}
			}
			if !covered {
				missing = append(missing, piece)
			}
		}
	}
	return len(missing) == 0, missing
}

// breakdown splits a rule into pieces of at most one group, resource,
// verb and name, and one URL and verb.
func breakdown(r rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, g := range r.APIGroups {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				if len(r.ResourceNames) == 0 {
					out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: []string{v}})
					continue
				}
				for _, n := range r.ResourceNames {
					out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res},
						Verbs: []string{v}, ResourceNames: []string{n}})
				}
			}
		}
	}
	for _, u := range r.NonResourceURLs {
		for _, v := range r.Verbs {
			out = append(out, rbacv1.PolicyRule{NonResourceURLs: []string{u}, Verbs: []string{v}})
		}
	}
	return out
}

// ruleCovers reports whether owner covers one piece from breakdown.
func ruleCovers(owner, piece *rbacv1.PolicyRule) bool {
	if !containsAllOrWildcard(owner.Verbs, piece.Verbs, rbacv1.VerbAll) ||
		!containsAllOrWildcard(owner.APIGroups, piece.APIGroups, rbacv1.APIGroupAll) {
		return false
	}
	for _, res := range piece.Resources {
		if !resourceCovers(owner.Resources, res) {
			return false
		}
	}
	for _, u := range piece.NonResourceURLs {
		if !urlCovered(owner.NonResourceURLs, u) {
			return false
		}
	}
	if len(owner.ResourceNames) == 0 {
		return true
	}
	if len(piece.ResourceNames) == 0 {
		return false
	}
	for _, n := range piece.ResourceNames {
		if !contains(owner.ResourceNames, n) {
			return false
		}
	}
	return true
}

func containsAllOrWildcard(set, want []string, wildcard string) bool {
	if contains(set, wildcard) {
		return true
	}
	for _, w := range want {
		if !contains(set, w) {
			return false
		}
	}
	return true
}

func resourceCovers(owner []string, res string) bool {
	if contains(owner, rbacv1.ResourceAll) || contains(owner, res) {
		return true
	}
	i := strings.IndexByte(res, '/')
	return i >= 0 && contains(owner, "*"+res[i:])
}

func urlCovered(owner []string, u string) bool {
	for _, o := range owner {
		if o == u || (strings.HasSuffix(o, "*") && strings.HasPrefix(u, strings.TrimRight(o, "*"))) {
			return true
		}
	}
	return false
}

// compactRules merges pieces of one group and one resource (no names, no
// URLs) that differ only in verb, as upstream's message shows them.
func compactRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	type gr struct{ group, resource string }
	var out []rbacv1.PolicyRule
	merged := map[gr]int{}
	for _, r := range rules {
		simple := len(r.ResourceNames) == 0 && len(r.NonResourceURLs) == 0 &&
			len(r.APIGroups) == 1 && len(r.Resources) == 1
		if !simple {
			out = append(out, r)
			continue
		}
		k := gr{r.APIGroups[0], r.Resources[0]}
		if i, ok := merged[k]; ok {
			out[i].Verbs = append(out[i].Verbs, r.Verbs...)
			continue
		}
		merged[k] = len(out)
		r.Verbs = append([]string(nil), r.Verbs...)
		out = append(out, r)
	}
	return out
}

// compactString is upstream's rendering of a rule in escalation messages:
// {APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}.
func compactString(r rbacv1.PolicyRule) string {
	var parts []string
	add := func(field string, v []string) {
		if len(v) > 0 {
			parts = append(parts, fmt.Sprintf("%s:%q", field, v))
		}
	}
	add("APIGroups", r.APIGroups)
	add("Resources", r.Resources)
	add("NonResourceURLs", r.NonResourceURLs)
	add("ResourceNames", r.ResourceNames)
	add("Verbs", r.Verbs)
	return "{" + strings.Join(parts, ", ") + "}"
}
