package rbac

import (
	"context"
	"fmt"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// User is the authenticated caller: the fields of internal/apiserver.User
// that authorization reads.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Attributes are what a decision is made on, as internal/apiserver's
// Attributes.
type Attributes struct {
	User        *User
	Verb        string
	Namespace   string
	APIGroup    string
	APIVersion  string
	Resource    string
	Subresource string
	Name        string
	// Path is the URL path of a non-resource request ("/metrics").
	Path string
	// ResourceRequest is false for non-resource paths.
	ResourceRequest bool
	// LabelSelector is a list's or watch's label selector, or nil.
	LabelSelector labels.Selector
	// FieldSelector is a list's or watch's field selector, or nil.
	FieldSelector fields.Selector
}

// Well-known names that the decisions here depend on.
const (
	// SystemMasters may grant anything without holding it, as upstream:
	// the API server's own privileged clients are in it.
	SystemMasters = "system:masters"
	// serviceAccountPrefix starts the user name of a service account,
	// "system:serviceaccount:<namespace>:<name>".
	serviceAccountPrefix = "system:serviceaccount:"
)

var (
	roleResource        = schema.GroupResource{Group: rbacv1.GroupName, Resource: "role"}
	clusterRoleResource = schema.GroupResource{Group: rbacv1.GroupName, Resource: "clusterrole"}
)

// Authorizer decides with upstream's RBAC semantics over the Roles,
// ClusterRoles and bindings it is fed. The zero value is not usable; use
// New. All methods are safe for concurrent use: decisions hold a read lock
// while they look up the few bindings that name the user; a write holds
// the write lock only to swap map entries (the rules are compiled before).
type Authorizer struct {
	mu sync.RWMutex

	clusterRoles map[string]*role
	roles        map[nsName]*role

	clusterBindings map[string]*binding
	roleBindings    map[nsName]*binding

	// cluster indexes ClusterRoleBindings by subject; namespaces indexes
	// the RoleBindings of each namespace.
	cluster    subjectIndex
	namespaces map[string]*subjectIndex
}

type nsName struct{ namespace, name string }

// role is a Role or ClusterRole as stored: its rules as written (for
// RulesFor and escalation checks) and compiled (for decisions).
type role struct {
	rules    []rbacv1.PolicyRule
	compiled []rule
}

// binding is a RoleBinding (namespace set) or ClusterRoleBinding.
type binding struct {
	namespace string
	roleRef   rbacv1.RoleRef
	subjects  []rbacv1.Subject
	// saUsers[i] is the user name subjects[i] matches when it is a
	// ServiceAccount ("" when it can match nobody), computed once.
	saUsers []string
	// reasons[i] is upstream's allow reason when subjects[i] matched.
	reasons []string
}

// subjectIndex finds the bindings that may apply to a user without
// walking the others: by user name (User subjects and the user names of
// ServiceAccount subjects) and by group.
type subjectIndex struct {
	users  map[string][]*binding
	groups map[string][]*binding
}

// New returns an Authorizer that knows no roles or bindings, and so
// allows nothing.
func New() *Authorizer {
	return &Authorizer{
		clusterRoles:    map[string]*role{},
		roles:           map[nsName]*role{},
		clusterBindings: map[string]*binding{},
		roleBindings:    map[nsName]*binding{},
		cluster:         subjectIndex{users: map[string][]*binding{}, groups: map[string][]*binding{}},
		namespaces:      map[string]*subjectIndex{},
	}
}

func newRole(rules []rbacv1.PolicyRule) *role {
	r := &role{rules: rules, compiled: make([]rule, len(rules))}
	for i := range rules {
		r.compiled[i] = compileRule(rules[i])
	}
	return r
}

// PutClusterRole adds or replaces a ClusterRole (informer add and update).
// The object is not modified and must not be modified afterwards.
func (a *Authorizer) PutClusterRole(cr *rbacv1.ClusterRole) {
	r := newRole(cr.Rules)
	a.mu.Lock()
	a.clusterRoles[cr.Name] = r
	a.mu.Unlock()
}

// DeleteClusterRole forgets a ClusterRole; bindings to it then resolve to
// a "not found" error, reported in denials as upstream.
func (a *Authorizer) DeleteClusterRole(name string) {
	a.mu.Lock()
	delete(a.clusterRoles, name)
	a.mu.Unlock()
}

// PutRole adds or replaces a Role.
func (a *Authorizer) PutRole(r *rbacv1.Role) {
	c := newRole(r.Rules)
	a.mu.Lock()
	a.roles[nsName{r.Namespace, r.Name}] = c
	a.mu.Unlock()
}

// DeleteRole forgets a Role.
func (a *Authorizer) DeleteRole(namespace, name string) {
	a.mu.Lock()
	delete(a.roles, nsName{namespace, name})
	a.mu.Unlock()
}

// PutClusterRoleBinding adds or replaces a ClusterRoleBinding.
func (a *Authorizer) PutClusterRoleBinding(b *rbacv1.ClusterRoleBinding) {
	nb := newBinding("", b.Name, b.RoleRef, b.Subjects)
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.clusterBindings[b.Name]; old != nil {
		a.cluster.remove(old)
	}
	a.clusterBindings[b.Name] = nb
	a.cluster.add(nb)
}

// DeleteClusterRoleBinding forgets a ClusterRoleBinding.
func (a *Authorizer) DeleteClusterRoleBinding(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.clusterBindings[name]; old != nil {
		a.cluster.remove(old)
		delete(a.clusterBindings, name)
	}
}

// PutRoleBinding adds or replaces a RoleBinding.
func (a *Authorizer) PutRoleBinding(b *rbacv1.RoleBinding) {
	nb := newBinding(b.Namespace, b.Name, b.RoleRef, b.Subjects)
	key := nsName{b.Namespace, b.Name}
	a.mu.Lock()
	defer a.mu.Unlock()
	idx := a.namespaces[b.Namespace]
	if idx == nil {
		idx = &subjectIndex{users: map[string][]*binding{}, groups: map[string][]*binding{}}
		a.namespaces[b.Namespace] = idx
	}
	if old := a.roleBindings[key]; old != nil {
		idx.remove(old)
	}
	a.roleBindings[key] = nb
	idx.add(nb)
}

// DeleteRoleBinding forgets a RoleBinding.
func (a *Authorizer) DeleteRoleBinding(namespace, name string) {
	key := nsName{namespace, name}
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.roleBindings[key]
	if old == nil {
		return
	}
	delete(a.roleBindings, key)
	idx := a.namespaces[namespace]
	idx.remove(old)
	if len(idx.users) == 0 && len(idx.groups) == 0 {
		delete(a.namespaces, namespace)
	}
}

// Replace sets the whole state at once (an informer's initial list, or a
// relist), dropping what it held before. Readers see the old state or the
// new one, never a mix.
func (a *Authorizer) Replace(clusterRoles []*rbacv1.ClusterRole, roles []*rbacv1.Role,
	clusterRoleBindings []*rbacv1.ClusterRoleBinding, roleBindings []*rbacv1.RoleBinding) {
	n := New()
	for _, r := range clusterRoles {
		n.clusterRoles[r.Name] = newRole(r.Rules)
	}
	for _, r := range roles {
		n.roles[nsName{r.Namespace, r.Name}] = newRole(r.Rules)
	}
	for _, b := range clusterRoleBindings {
		nb := newBinding("", b.Name, b.RoleRef, b.Subjects)
		n.clusterBindings[b.Name] = nb
		n.cluster.add(nb)
	}
	for _, b := range roleBindings {
		nb := newBinding(b.Namespace, b.Name, b.RoleRef, b.Subjects)
		n.roleBindings[nsName{b.Namespace, b.Name}] = nb
		idx := n.namespaces[b.Namespace]
		if idx == nil {
			idx = &subjectIndex{users: map[string][]*binding{}, groups: map[string][]*binding{}}
			n.namespaces[b.Namespace] = idx
		}
		idx.add(nb)
	}
	a.mu.Lock()
	a.clusterRoles, a.roles = n.clusterRoles, n.roles
	a.clusterBindings, a.roleBindings = n.clusterBindings, n.roleBindings
	a.cluster, a.namespaces = n.cluster, n.namespaces
	a.mu.Unlock()
}

func newBinding(namespace, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) *binding {
	b := &binding{namespace: namespace, roleRef: ref, subjects: subjects,
		saUsers: make([]string, len(subjects)), reasons: make([]string, len(subjects))}
	for i, s := range subjects {
		if s.Kind == rbacv1.ServiceAccountKind {
			// A ServiceAccount subject of a RoleBinding defaults to the
			// binding's namespace; one of a ClusterRoleBinding without a
			// namespace matches nobody.
			ns := s.Namespace
			if ns == "" {
				ns = namespace
			}
			if ns != "" {
				b.saUsers[i] = serviceAccountPrefix + ns + ":" + s.Name
			}
		}
		if namespace == "" {
			b.reasons[i] = fmt.Sprintf("RBAC: allowed by ClusterRoleBinding %q of %s %q to %s",
				name, ref.Kind, ref.Name, describeSubject(s, ""))
		} else {
			b.reasons[i] = fmt.Sprintf("RBAC: allowed by RoleBinding %q of %s %q to %s",
				name+"/"+namespace, ref.Kind, ref.Name, describeSubject(s, namespace))
		}
	}
	return b
}

// describeSubject names a subject in an allow reason as upstream does:
// Kind "name", and a ServiceAccount as "name/namespace".
func describeSubject(s rbacv1.Subject, bindingNamespace string) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		return fmt.Sprintf("%s %q", s.Kind, s.Name+"/"+ns)
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name)
}

// each calls fn with the index map and key of each subject of b
// that can match someone.
func (x *subjectIndex) each(b *binding, fn func(m map[string][]*binding, key string)) {
	for i, s := range b.subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			fn(x.users, s.Name)
		case rbacv1.GroupKind:
			fn(x.groups, s.Name)
		case rbacv1.ServiceAccountKind:
			if b.saUsers[i] != "" {
				fn(x.users, b.saUsers[i])
			}
		}
	}
}

func (x *subjectIndex) add(b *binding) {
	x.each(b, func(m map[string][]*binding, key string) {
		l := m[key]
		// A binding that names the same subject twice is indexed once;
		// its keys are added one after another, so a repeat is the last.
		if len(l) > 0 && l[len(l)-1] == b {
			return
		}
		m[key] = append(l, b)
	})
}

func (x *subjectIndex) remove(b *binding) {
	x.each(b, func(m map[string][]*binding, key string) {
		l := m[key]
		for i, e := range l {
			if e == b {
				nl := make([]*binding, 0, len(l)-1)
				nl = append(nl, l[:i]...)
				nl = append(nl, l[i+1:]...)
				if len(nl) == 0 {
					delete(m, key)
				} else {
					m[key] = nl
				}
				return
			}
		}
	})
}

// firstSubject is upstream's appliesTo: the index of the first subject of
// b that matches u, or -1.
func (b *binding) firstSubject(u *User) int {
	for i, s := range b.subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if s.Name == u.Name {
				return i
			}
		case rbacv1.GroupKind:
			if contains(u.Groups, s.Name) {
				return i
			}
		case rbacv1.ServiceAccountKind:
			if b.saUsers[i] != "" && b.saUsers[i] == u.Name {
				return i
			}
		}
	}
	return -1
}

// visit calls fn with each binding that applies to u in namespace: the
// ClusterRoleBindings, then (namespace set) the namespace's RoleBindings.
// A binding that names the user more than once may be visited more than
// once. fn returns false to stop. The caller holds a.mu for reading.
func (a *Authorizer) visit(u *User, namespace string, fn func(b *binding) bool) {
	if !a.cluster.visit(u, fn) {
		return
	}
	if namespace == "" {
		return
	}
	if idx := a.namespaces[namespace]; idx != nil {
		idx.visit(u, fn)
	}
}

func (x *subjectIndex) visit(u *User, fn func(b *binding) bool) bool {
	for _, b := range x.users[u.Name] {
		if !fn(b) {
			return false
		}
	}
	for _, g := range u.Groups {
		for _, b := range x.groups[g] {
			if !fn(b) {
				return false
			}
		}
	}
	return true
}

// roleFor resolves a binding's roleRef, as upstream's
// GetRoleReferenceRules, with its errors.
func (a *Authorizer) roleFor(b *binding) (*role, error) {
	switch b.roleRef.Kind {
	case "ClusterRole":
		if r := a.clusterRoles[b.roleRef.Name]; r != nil {
			return r, nil
		}
		return nil, apierrors.NewNotFound(clusterRoleResource, b.roleRef.Name)
	case "Role":
		if r := a.roles[nsName{b.namespace, b.roleRef.Name}]; r != nil {
			return r, nil
		}
		return nil, apierrors.NewNotFound(roleResource, b.roleRef.Name)
	default:
		return nil, fmt.Errorf("unsupported role reference kind: %q", b.roleRef.Kind)
	}
}

// Authorize allows the request when a rule of a role bound to the user
// allows it. An allow's reason names the binding, role and subject, as
// upstream: `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y"
// to User "z"`. A denial's reason is empty unless a binding that applies
// to the user could not be resolved ("RBAC: clusterrole.rbac.authorization.k8s.io
// \"y\" not found"); the 403 message is the API server's. err is always
// nil: resolution errors deny, they do not fail the request.
func (a *Authorizer) Authorize(_ context.Context, attrs Attributes) (bool, string, error) {
	if attrs.User == nil {
		return false, "", nil
	}
	var (
		reason string
		errs   []error
	)
	a.mu.RLock()
	a.visit(attrs.User, attrs.Namespace, func(b *binding) bool {
		r, err := a.roleFor(b)
		if err != nil {
			errs = append(errs, err)
			return true
		}
		for i := range r.compiled {
			if r.compiled[i].allows(&attrs) {
				reason = b.reasons[b.firstSubject(attrs.User)]
				return false
			}
		}
		return true
	})
	a.mu.RUnlock()
	if reason != "" {
		return true, reason, nil
	}
	if len(errs) > 0 {
		return false, fmt.Sprintf("RBAC: %v", utilerrors.NewAggregate(errs)), nil
	}
	return false, "", nil
}

// rulesFor is upstream's RuleResolver.RulesFor: every rule bound to u in
// namespace (cluster-wide rules only when namespace is empty), each
// binding once, and the errors met resolving role references.
func (a *Authorizer) rulesFor(u *User, namespace string) ([]rbacv1.PolicyRule, error) {
	var (
		rules []rbacv1.PolicyRule
		errs  []error
		seen  = map[*binding]bool{}
	)
	a.mu.RLock()
	a.visit(u, namespace, func(b *binding) bool {
		if seen[b] {
			return true
		}
		seen[b] = true
		r, err := a.roleFor(b)
		if err != nil {
			errs = append(errs, err)
			return true
		}
		rules = append(rules, r.rules...)
		return true
	})
	a.mu.RUnlock()
	return rules, utilerrors.NewAggregate(errs)
}

// RulesFor lists what u may do in namespace, as a SelfSubjectRulesReview
// and `kubectl auth can-i --list` show it: one ResourceRule for each
// bound rule with resources and one NonResourceRule for each with
// nonResourceURLs. When a binding's role could not be resolved the lists
// hold what could be, incomplete is true and err says what was missing
// (upstream reports it as the review's evaluationError).
func (a *Authorizer) RulesFor(_ context.Context, u *User, namespace string) ([]authorizationv1.ResourceRule,
	[]authorizationv1.NonResourceRule, bool, error) {
	if u == nil {
		return nil, nil, false, nil
	}
	rules, err := a.rulesFor(u, namespace)
	var (
		res    []authorizationv1.ResourceRule
		nonRes []authorizationv1.NonResourceRule
	)
	for _, r := range rules {
		if len(r.Resources) > 0 {
			res = append(res, authorizationv1.ResourceRule{Verbs: r.Verbs, APIGroups: r.APIGroups,
				Resources: r.Resources, ResourceNames: r.ResourceNames})
		}
		if len(r.NonResourceURLs) > 0 {
			nonRes = append(nonRes, authorizationv1.NonResourceRule{Verbs: r.Verbs, NonResourceURLs: r.NonResourceURLs})
		}
	}
	return res, nonRes, err != nil, err
}
