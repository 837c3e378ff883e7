package flowcontrol

import (
	"cmp"
	"slices"
	"strings"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
)

// Request is what classification looks at: who asks, and for what
// (upstream's RequestDigest).
type Request struct {
	User   string
	Groups []string

	// IsResource is true for /api and /apis resource requests. Verb is the
	// Kubernetes verb then (get, list, watch, create, ...), and the
	// lowercased HTTP method (get, post, put, ...) for other paths.
	IsResource  bool
	Verb        string
	APIGroup    string
	Namespace   string // "" for cluster-scoped resources
	Resource    string
	Subresource string
	// Path is the URL path of a non-resource request ("/metrics").
	Path string
}

// flowSchema is a FlowSchema compiled for matching.
type flowSchema struct {
	name       string
	uid        []string // the X-Kubernetes-PF-FlowSchema-UID value; nil when not stored
	precedence int32
	level      *level
	// distinguisher is "", ByUser or ByNamespace.
	distinguisher flowcontrolv1.FlowDistinguisherMethodType
	rules         []flowcontrolv1.PolicyRulesWithSubjects
	metrics       *schemaMetrics
}

// classify returns the schema that matches r first, or nil.
func classify(schemas []*flowSchema, r *Request) *flowSchema {
	for _, fs := range schemas {
		if fs.matches(r) {
			return fs
		}
	}
	return nil
}

func (fs *flowSchema) matches(r *Request) bool {
	for i := range fs.rules {
		if rulesMatch(&fs.rules[i], r) {
			return true
		}
	}
	return false
}

// flow names the flow of r in fs: requests of one flow share a hand of
// queues.
func (fs *flowSchema) flow(r *Request) string {
	switch fs.distinguisher {
	case flowcontrolv1.FlowDistinguisherMethodByUserType:
		return r.User
	case flowcontrolv1.FlowDistinguisherMethodByNamespaceType:
		return r.Namespace
	}
	return ""
}

func rulesMatch(rule *flowcontrolv1.PolicyRulesWithSubjects, r *Request) bool {
	if !subjectsMatch(rule.Subjects, r) {
		return false
	}
	if r.IsResource {
		for i := range rule.ResourceRules {
			if resourceRuleMatches(&rule.ResourceRules[i], r) {
				return true
			}
		}
		return false
	}
	for i := range rule.NonResourceRules {
		if nonResourceRuleMatches(&rule.NonResourceRules[i], r) {
			return true
		}
	}
	return false
}

func subjectsMatch(subjects []flowcontrolv1.Subject, r *Request) bool {
	for i := range subjects {
		s := &subjects[i]
		switch s.Kind {
		case flowcontrolv1.SubjectKindGroup:
			if s.Group == nil {
				continue
			}
			if s.Group.Name == flowcontrolv1.NameAll || slices.Contains(r.Groups, s.Group.Name) {
				return true
			}
		case flowcontrolv1.SubjectKindUser:
			if s.User != nil && (s.User.Name == flowcontrolv1.NameAll || s.User.Name == r.User) {
				return true
			}
		case flowcontrolv1.SubjectKindServiceAccount:
			if s.ServiceAccount != nil && serviceAccountMatches(s.ServiceAccount, r.User) {
				return true
			}
		}
	}
	return false
}

// serviceAccountMatches: a service account's user name is
// system:serviceaccount:<namespace>:<name>.
func serviceAccountMatches(sa *flowcontrolv1.ServiceAccountSubject, user string) bool {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	if !ok {
		return false
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || ns != sa.Namespace {
		return false
	}
	return sa.Name == flowcontrolv1.NameAll || sa.Name == name
}

func resourceRuleMatches(rule *flowcontrolv1.ResourcePolicyRule, r *Request) bool {
	if !matchesOrAll(rule.Verbs, r.Verb, flowcontrolv1.VerbAll) ||
		!matchesOrAll(rule.APIGroups, r.APIGroup, flowcontrolv1.APIGroupAll) ||
		!resourceMatches(rule.Resources, r.Resource, r.Subresource) {
		return false
	}
	if r.Namespace == "" {
		return rule.ClusterScope
	}
	return matchesOrAll(rule.Namespaces, r.Namespace, flowcontrolv1.NamespaceEvery)
}

// resourceMatches: a subresource request matches "resource/sub" (or "*").
func resourceMatches(rules []string, resource, sub string) bool {
	for _, p := range rules {
		if p == flowcontrolv1.ResourceAll {
			return true
		}
		if sub == "" {
			if p == resource {
				return true
			}
			continue
		}
		if len(p) == len(resource)+1+len(sub) && strings.HasPrefix(p, resource) && p[len(resource)] == '/' && strings.HasSuffix(p, sub) {
			return true
		}
	}
	return false
}

// nonResourceRuleMatches: a URL pattern is a path, "*", or a prefix ending
// in "/*" ("/healthz/*" matches "/healthz/etcd").
func nonResourceRuleMatches(rule *flowcontrolv1.NonResourcePolicyRule, r *Request) bool {
	if !matchesOrAll(rule.Verbs, r.Verb, flowcontrolv1.VerbAll) {
		return false
	}
	for _, p := range rule.NonResourceURLs {
		if p == flowcontrolv1.NonResourceAll || p == r.Path {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(r.Path, prefix) {
			return true
		}
	}
	return false
}

func matchesOrAll(list []string, v, all string) bool {
	for _, s := range list {
		if s == v || s == all {
			return true
		}
	}
	return false
}

// sortSchemas orders schemas for matching: lowest matchingPrecedence
// first, then by name, as upstream.
func sortSchemas(schemas []*flowSchema) {
	slices.SortFunc(schemas, func(a, b *flowSchema) int {
		if c := cmp.Compare(a.precedence, b.precedence); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
}
