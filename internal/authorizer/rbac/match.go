package rbac

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// rule is a PolicyRule prepared for matching: the wildcards are found once,
// when the role is stored, so that a decision only compares strings and
// allocates nothing.
type rule struct {
	allVerbs     bool
	verbs        []string
	allGroups    bool
	groups       []string
	allResources bool
	// resources are the exact entries, "pods" or "pods/log".
	resources []string
	// anySubresource holds the subresource of each "*/subresource" entry.
	anySubresource []string
	// names empty means every name.
	names []string

	allURLs bool
	urls    []string
	// urlPrefixes are the entries that end in "*", without it.
	urlPrefixes []string
}

func compileRule(r rbacv1.PolicyRule) rule {
	var c rule
	for _, v := range r.Verbs {
		if v == rbacv1.VerbAll {
			c.allVerbs = true
		}
	}
	c.verbs = r.Verbs
	for _, g := range r.APIGroups {
		if g == rbacv1.APIGroupAll {
			c.allGroups = true
		}
	}
	c.groups = r.APIGroups
	for _, res := range r.Resources {
		switch {
		case res == rbacv1.ResourceAll:
			c.allResources = true
		case strings.HasPrefix(res, "*/"):
			c.anySubresource = append(c.anySubresource, res[2:])
		default:
			c.resources = append(c.resources, res)
		}
	}
	c.names = r.ResourceNames
	for _, u := range r.NonResourceURLs {
		switch {
		case u == rbacv1.NonResourceAll:
			c.allURLs = true
		case strings.HasSuffix(u, "*"):
			c.urlPrefixes = append(c.urlPrefixes, strings.TrimRight(u, "*"))
		default:
			c.urls = append(c.urls, u)
		}
	}
	return c
}

func contains(set []string, s string) bool {
	for _, e := range set {
		if e == s {
			return true
		}
	}
	return false
}

// allows is upstream's RuleAllows: a resource request needs the verb, the
// group, the resource (with its subresource) and the name to match; a
// non-resource request the verb and the path.
func (r *rule) allows(a *Attributes) bool {
	if !r.allVerbs && !contains(r.verbs, a.Verb) {
		return false
	}
	if !a.ResourceRequest {
		return r.matchesURL(a.Path)
	}
	return (r.allGroups || contains(r.groups, a.APIGroup)) &&
		r.matchesResource(a.Resource, a.Subresource) &&
		(len(r.names) == 0 || contains(r.names, a.Name))
}

// matchesResource matches "*", the exact "resource" or
// "resource/subresource", and "*/subresource". As upstream, "resource/*"
// is not a wildcard: a grant of every subresource of pods would also grant
// the subresources added to pods later, so upstream refuses to express it
// (kubernetes/enhancements#4961); such an entry matches only a request
// whose subresource is literally "*".
func (r *rule) matchesResource(resource, sub string) bool {
	if r.allResources {
		return true
	}
	for _, e := range r.resources {
		if sub == "" {
			if e == resource {
				return true
			}
			continue
		}
		// e == resource+"/"+sub without building the string.
		if len(e) == len(resource)+1+len(sub) && e[len(resource)] == '/' &&
			strings.HasPrefix(e, resource) && strings.HasSuffix(e, sub) {
			return true
		}
	}
	return sub != "" && contains(r.anySubresource, sub)
}

// matchesURL matches "*", the exact path, and a trailing "*" as a prefix.
func (r *rule) matchesURL(path string) bool {
	if r.allURLs || contains(r.urls, path) {
		return true
	}
	for _, p := range r.urlPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// RuleAllows reports whether one PolicyRule allows the request, with
// upstream's matching: "*" in verbs, apiGroups and resources;
// "resource/subresource" and "*/subresource"; resourceNames (empty means
// every name, and a rule with names never allows a request without one,
// such as list or create); nonResourceURLs with "*" and a trailing "*".
func RuleAllows(a Attributes, r rbacv1.PolicyRule) bool {
	c := compileRule(r)
	return c.allows(&a)
}
