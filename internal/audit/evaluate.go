package audit

import (
	"slices"
	"strings"
)

// Attributes are what a policy decides a request on: the authenticated
// user (not the impersonated one, as upstream: the policy is evaluated
// before impersonation) and what the request does.
type Attributes struct {
	// User and Groups are empty for a request that failed
	// authentication; Authenticated says which.
	User          string
	Groups        []string
	Authenticated bool
	// Verb is the Kubernetes verb (get, list, watch, create, ...) of a
	// resource request, the lower-case HTTP method of another.
	Verb string

	// ResourceRequest is true for /api and /apis requests naming a
	// resource; the fields below it describe those.
	ResourceRequest bool
	APIGroup        string
	Namespace       string
	Resource        string
	Subresource     string
	Name            string
	// Path is the URL path of a non-resource request.
	Path string
}

// RequestConfig is what a policy decides for one request.
type RequestConfig struct {
	Level             Level
	OmitManagedFields bool
	omit              uint8 // a bit per stage in stages
}

// Omits reports whether events of stage s are left out.
func (c RequestConfig) Omits(s Stage) bool { return c.omit&stageBit(s) != 0 }

func stageBit(s Stage) uint8 {
	for i, v := range stages {
		if v == s {
			return 1 << i
		}
	}
	return 0
}

func stageBits(ss []Stage) uint8 {
	var b uint8
	for _, s := range ss {
		b |= stageBit(s)
	}
	return b
}

// Evaluate returns the level and options of the first rule that matches
// a, or LevelNone when none does. It does not allocate.
func (p *Policy) Evaluate(a *Attributes) RequestConfig {
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.matches(a) {
			continue
		}
		omitMF := p.OmitManagedFields
		if r.OmitManagedFields != nil {
			omitMF = *r.OmitManagedFields
		}
		return RequestConfig{Level: r.Level, OmitManagedFields: omitMF, omit: stageBits(p.OmitStages) | stageBits(r.OmitStages)}
	}
	return RequestConfig{Level: LevelNone, OmitManagedFields: p.OmitManagedFields, omit: stageBits(p.OmitStages)}
}

func (r *PolicyRule) matches(a *Attributes) bool {
	if len(r.Users) > 0 && (!a.Authenticated || !slices.Contains(r.Users, a.User)) {
		return false
	}
	if len(r.UserGroups) > 0 {
		if !a.Authenticated || !slices.ContainsFunc(a.Groups, func(g string) bool { return slices.Contains(r.UserGroups, g) }) {
			return false
		}
	}
	if len(r.Verbs) > 0 && !slices.Contains(r.Verbs, a.Verb) {
		return false
	}
	if len(r.Resources) > 0 || len(r.Namespaces) > 0 {
		return r.matchesResource(a)
	}
	if len(r.NonResourceURLs) > 0 {
		return !a.ResourceRequest && slices.ContainsFunc(r.NonResourceURLs, func(spec string) bool { return pathMatches(a.Path, spec) })
	}
	return true
}

// matchesResource: a non-namespaced resource is in the namespace "".
func (r *PolicyRule) matchesResource(a *Attributes) bool {
	if !a.ResourceRequest {
		return false
	}
	if len(r.Namespaces) > 0 && !slices.Contains(r.Namespaces, a.Namespace) {
		return false
	}
	if len(r.Resources) == 0 {
		return true
	}
	for _, gr := range r.Resources {
		if gr.Group != a.APIGroup && gr.Group != "*" {
			continue
		}
		if len(gr.Resources) == 0 {
			return true
		}
		if len(gr.ResourceNames) > 0 && !slices.Contains(gr.ResourceNames, a.Name) {
			continue
		}
		for _, res := range gr.Resources {
			if resourceMatches(res, a.Resource, a.Subresource) {
				return true
			}
		}
	}
	return false
}

// resourceMatches matches "*", "resource", "resource/sub", "resource/*"
// and "*/sub". A plain "resource" does not match its subresources;
// "resource/*" matches the resource itself too, as upstream's.
func resourceMatches(spec, resource, sub string) bool {
	if spec == "*" {
		return true
	}
	specRes, specSub, ok := strings.Cut(spec, "/")
	if !ok {
		return sub == "" && spec == resource
	}
	if specRes == "*" {
		return sub != "" && specSub == sub
	}
	return specRes == resource && (specSub == "*" || (sub != "" && specSub == sub))
}

// pathMatches matches "*", the exact path, or a prefix ending in "*".
func pathMatches(path, spec string) bool {
	if spec == "*" || spec == path {
		return true
	}
	prefix, ok := strings.CutSuffix(spec, "*")
	return ok && strings.HasPrefix(path, strings.TrimRight(prefix, "*"))
}
