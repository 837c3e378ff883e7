package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiff-io/skiff/internal/authorizer/rbac"
	"github.com/skiff-io/skiff/internal/localpath"
)

// Identity of kubelets, as upstream's node identifier reads it.
const (
	UserPrefix = "system:node:"
	Group      = "system:nodes"
	// LeaseNamespace holds the nodes' heartbeat Leases.
	LeaseNamespace = corev1.NamespaceNodeLease
	// RoleName is the bootstrap ClusterRole whose rules are the generic
	// part of what a node may do.
	RoleName = "system:node"
)

// Identify returns the node a user is: isNode is true for a user named
// "system:node:<name>" in group "system:nodes"; name is empty when the
// user name holds no node name.
func Identify(u *rbac.User) (name string, isNode bool) {
	if u == nil {
		return "", false
	}
	rest, ok := strings.CutPrefix(u.Name, UserPrefix)
	if !ok || !slices.Contains(u.Groups, Group) {
		return "", false
	}
	return rest, true
}

// Authorizer is the Node authorizer. Feed it with PutPod/DeletePod and
// PutPV/DeletePV from informers (tombstones unwrapped by the caller).
// All methods are safe for concurrent use.
type Authorizer struct {
	g     *graph
	rules genericRules
}

// New returns an Authorizer with an empty graph and the generic rules of
// the bootstrap "system:node" ClusterRole, and skiffRules.
func New() *Authorizer {
	var rules []rbacv1.PolicyRule
	for _, cr := range rbac.ClusterRoles() {
		if cr.Name == RoleName {
			rules = cr.Rules
		}
	}
	return &Authorizer{g: newGraph(), rules: compileGeneric(append(rules, skiffRules...))}
}

// skiffRules are what a skiff node needs beyond upstream's kubelet: the
// kubelet reads EndpointSlices to hold a terminating pod until no Service
// sends it traffic (a node may read every pod already, and a slice says no
// more than the pods it lists), and a joined agent's proxy and cluster DNS
// act as the node, where upstream runs them as pods with accounts of their
// own: the DNS reads Namespaces (names and labels, nothing secret).
var skiffRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
}

func (a *Authorizer) PutPod(p *corev1.Pod)              { a.g.putPod(p) }
func (a *Authorizer) DeletePod(namespace, name string)  { a.g.deletePod(namespace, name) }
func (a *Authorizer) PutPV(pv *corev1.PersistentVolume) { a.g.putPV(pv) }
func (a *Authorizer) DeletePV(name string)              { a.g.deletePV(name) }

// Authorize allows or has no opinion (allowed false, with upstream's
// reason when the request was a node's); it never returns an error.
func (a *Authorizer) Authorize(_ context.Context, attrs rbac.Attributes) (bool, string, error) {
	node, isNode := Identify(attrs.User)
	if !isNode {
		return false, "", nil
	}
	if node == "" {
		return false, fmt.Sprintf("unknown node for user %q", attrs.User.Name), nil
	}
	if attrs.ResourceRequest {
		switch attrs.APIGroup + "/" + attrs.Resource {
		case "/secrets":
			return a.readNamespaced(node, kindSecret, attrs)
		case "/configmaps":
			return a.readNamespaced(node, kindConfigMap, attrs)
		case "/persistentvolumeclaims":
			if attrs.Subresource == "status" {
				return a.statusUpdate(node, kindPVC, attrs)
			}
			return a.get(node, kindPVC, attrs)
		case "/persistentvolumes":
			return a.persistentVolume(node, attrs)
		case "/serviceaccounts":
			if attrs.Verb == "get" && attrs.Subresource == "" {
				// The account's UID, for a PodCertificateRequest.
				return a.related(node, kindServiceAccount, attrs)
			}
			return a.createToken(node, attrs)
		case "certificates.k8s.io/podcertificaterequests":
			return authorizePodCertificateRequest(node, attrs)
		case "coordination.k8s.io/leases":
			return authorizeLease(node, attrs)
		case "storage.k8s.io/csinodes":
			return authorizeCSINode(node, attrs)
		case "/pods":
			// Its own pods, whatever the generic rules say.
			if attrs.Verb == "get" && attrs.Subresource == "" && attrs.Name != "" && a.g.has(node, kindPod, attrs.Namespace, attrs.Name) {
				return true, "", nil
			}
		}
	}
	if a.rules.allow(&attrs) {
		return true, "", nil
	}
	return false, "", nil
}

// RulesFor is upstream's: a node's permissions depend on the graph and
// cannot be listed.
func (a *Authorizer) RulesFor(_ context.Context, u *rbac.User, _ string) ([]authorizationv1.ResourceRule, []authorizationv1.NonResourceRule, bool, error) {
	if _, isNode := Identify(u); isNode {
		return nil, nil, true, errors.New("node authorizer does not support user rule resolution")
	}
	return nil, nil, false, nil
}

// persistentVolume allows get of a volume bound to a claim of the node's
// pods, and, for the node's local-path volumes (labelled for it), list
// and watch by that label and get, update and patch (NodeRestriction
// lets an update drop only the local-path finalizer).
func (a *Authorizer) persistentVolume(node string, attrs rbac.Attributes) (bool, string, error) {
	if attrs.Subresource != "" {
		return false, "cannot get subresource", nil
	}
	switch attrs.Verb {
	case "list", "watch":
		if sel := attrs.LabelSelector; sel != nil {
			if v, ok := sel.RequiresExactMatch(localpath.NodeLabel); ok && v == node {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("can only list and watch persistent volumes labelled %s=%s", localpath.NodeLabel, node), nil
	case "get", "update", "patch":
	default:
		return false, "can only get individual resources of this type", nil
	}
	if attrs.Name == "" {
		return false, "No Object name found", nil
	}
	if a.g.holdsLocalPV(node, attrs.Name) || (attrs.Verb == "get" && a.g.hasPV(node, attrs.Name)) {
		return true, "", nil
	}
	return false, noRelationship(node), nil
}

func noRelationship(node string) string {
	return fmt.Sprintf("no relationship found between node '%s' and this object", node)
}

func (a *Authorizer) readNamespaced(node string, k kind, attrs rbac.Attributes) (bool, string, error) {
	switch attrs.Verb {
	case "get", "list", "watch":
	default:
		return false, "can only read resources of this type", nil
	}
	if attrs.Subresource != "" {
		return false, "cannot read subresource", nil
	}
	if attrs.Namespace == "" {
		return false, "can only read namespaced object of this type", nil
	}
	return a.related(node, k, attrs)
}

func (a *Authorizer) get(node string, k kind, attrs rbac.Attributes) (bool, string, error) {
	if attrs.Verb != "get" {
		return false, "can only get individual resources of this type", nil
	}
	if attrs.Subresource != "" {
		return false, "cannot get subresource", nil
	}
	return a.related(node, k, attrs)
}

func (a *Authorizer) statusUpdate(node string, k kind, attrs rbac.Attributes) (bool, string, error) {
	switch attrs.Verb {
	case "update", "patch":
	default:
		return false, "can only get/update/patch this type", nil
	}
	if attrs.Subresource != "status" {
		return false, "can only update status subresource", nil
	}
	return a.related(node, k, attrs)
}

func (a *Authorizer) createToken(node string, attrs rbac.Attributes) (bool, string, error) {
	if attrs.Verb != "create" || attrs.Name == "" {
		return false, "can only create tokens for individual service accounts", nil
	}
	if attrs.Subresource != "token" {
		return false, "can only create token subresource of serviceaccount", nil
	}
	return a.related(node, kindServiceAccount, attrs)
}

func (a *Authorizer) related(node string, k kind, attrs rbac.Attributes) (bool, string, error) {
	if attrs.Name == "" {
		return false, "No Object name found", nil
	}
	if !a.g.has(node, k, attrs.Namespace, attrs.Name) {
		return false, noRelationship(node), nil
	}
	return true, "", nil
}

// authorizePodCertificateRequest lets a node create requests (which
// NodeRestriction limits to the pods bound to it) and list and watch the
// requests that name it (field selector spec.nodeName=<node>). Upstream
// also lets it get one of those by name, through a graph of the requests;
// skiff keeps no such graph, and its kubelet reads them from a watch.
func authorizePodCertificateRequest(node string, attrs rbac.Attributes) (bool, string, error) {
	if attrs.Subresource != "" {
		return false, "nodes may not access the status subresource of PodCertificateRequests", nil
	}
	switch attrs.Verb {
	case "create":
		return true, "", nil
	case "list", "watch":
		if sel := attrs.FieldSelector; sel != nil {
			if v, ok := sel.RequiresExactMatch("spec.nodeName"); ok && v == node {
				return true, "", nil
			}
		}
		return false, "can only list/watch podcertificaterequests with nodeName field selector", nil
	}
	return false, fmt.Sprintf("nodes may not %s podcertificaterequests", attrs.Verb), nil
}

func authorizeLease(node string, attrs rbac.Attributes) (bool, string, error) {
	switch attrs.Verb {
	case "get", "create", "update", "patch", "delete":
	default:
		return false, "can only get, create, update, patch, or delete a node lease", nil
	}
	if attrs.Namespace != LeaseNamespace {
		return false, fmt.Sprintf("can only access leases in the %q system namespace", LeaseNamespace), nil
	}
	// The name of a create is not known here; NodeRestriction checks it.
	if attrs.Verb != "create" && attrs.Name != node {
		return false, "can only access node lease with the same name as the requesting node", nil
	}
	return true, "", nil
}

func authorizeCSINode(node string, attrs rbac.Attributes) (bool, string, error) {
	switch attrs.Verb {
	case "get", "create", "update", "patch", "delete":
	default:
		return false, "can only get, create, update, patch, or delete a CSINode", nil
	}
	if attrs.Subresource != "" {
		return false, "cannot authorize CSINode subresources", nil
	}
	if attrs.Verb != "create" && attrs.Name != node {
		return false, "can only access CSINode with the same name as the requesting node", nil
	}
	return true, "", nil
}

// genericRules are the "system:node" rules indexed by group and
// resource[/subresource], so that a decision is a map lookup. Rules with
// wildcards, resource names or non-resource URLs (the bootstrap role has
// none) are kept aside and matched one by one.
type genericRules struct {
	verbs map[string][]string // "group\x00resource[/sub]" → verbs
	other []rbacv1.PolicyRule
}

func compileGeneric(rules []rbacv1.PolicyRule) genericRules {
	g := genericRules{verbs: map[string][]string{}}
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 || slices.Contains(r.Verbs, rbacv1.VerbAll) ||
			slices.Contains(r.APIGroups, rbacv1.APIGroupAll) || slices.ContainsFunc(r.Resources, func(s string) bool { return strings.Contains(s, "*") }) {
			g.other = append(g.other, r)
			continue
		}
		for _, grp := range r.APIGroups {
			for _, res := range r.Resources {
				k := grp + "\x00" + res
				for _, v := range r.Verbs {
					if !slices.Contains(g.verbs[k], v) {
						g.verbs[k] = append(g.verbs[k], v)
					}
				}
			}
		}
	}
	return g
}

func (g *genericRules) allow(a *rbac.Attributes) bool {
	if a.ResourceRequest {
		var verbs []string
		if a.Subresource == "" {
			verbs = g.verbs[a.APIGroup+"\x00"+a.Resource]
		} else {
			verbs = g.verbs[a.APIGroup+"\x00"+a.Resource+"/"+a.Subresource]
		}
		if slices.Contains(verbs, a.Verb) {
			return true
		}
	}
	for _, r := range g.other {
		if rbac.RuleAllows(*a, r) {
			return true
		}
	}
	return false
}
