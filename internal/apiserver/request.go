package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what the URL and method of an API request say.
type requestInfo struct {
	// resource requests: /api/v1/... and /apis/<group>/<version>/...
	isResource bool
	group      string
	version    string
	namespace  string
	resource   string
	name       string
	sub        string // subresource ("status", "scale", ...)
	// verb is the Kubernetes verb: get list watch create update patch
	// delete deletecollection.
	verb string
	// dryRun: the query names dryRun (the request metrics' dry_run label).
	dryRun bool
}

// parseRequest splits an API path into its parts as upstream's
// RequestInfoFactory does:
//
//	/api/v1/namespaces/{ns}/{resource}/{name}/{sub}
//	/apis/{group}/{version}/{resource}/{name}/{sub}
//	/api/v1/watch/... (deprecated watch paths)
func parseRequest(r *http.Request) requestInfo {
	info := requestInfo{}
	parts := splitPath(r.URL.Path)
	if len(parts) < 2 {
		return info
	}
	switch parts[0] {
	case "api":
		info.version = parts[1]
		parts = parts[2:]
	case "apis":
		if len(parts) < 3 {
			return info
		}
		info.group, info.version = parts[1], parts[2]
		parts = parts[3:]
	default:
		return info
	}
	if len(parts) == 0 {
		return info // discovery of a group version
	}
	info.isResource = true
	watchPath := false
	if parts[0] == "watch" {
		watchPath = true
		parts = parts[1:]
	}
	// "namespaces/{ns}/{resource}..." is a namespaced request, except
	// "namespaces/{name}/{sub}" for the namespace itself (finalize, status).
	if len(parts) >= 3 && parts[0] == "namespaces" {
		info.namespace = parts[1]
		parts = parts[2:]
		if len(parts) == 1 && (parts[0] == "finalize" || parts[0] == "status") {
			info.resource, info.name, info.sub = "namespaces", info.namespace, parts[0]
			info.namespace = ""
			parts = nil
		}
	} else if len(parts) >= 2 && parts[0] == "namespaces" {
		// "namespaces/{name}": the namespace object itself.
		info.resource, info.name = "namespaces", parts[1]
		parts = nil
	}
	if parts != nil {
		if len(parts) > 0 {
			info.resource = parts[0]
		}
		if len(parts) > 1 {
			info.name = parts[1]
		}
		if len(parts) > 2 {
			info.sub = strings.Join(parts[2:], "/")
			// "{nodes,pods,services}/{name}/proxy/{path...}": the
			// subresource is "proxy", the rest a path on the backend, as
			// upstream's RequestInfo has it.
			if parts[2] == "proxy" && (info.resource == "nodes" || info.resource == "pods" || info.resource == "services") {
				info.sub = "proxy"
			}
		}
	}
	q := r.URL.Query()
	info.dryRun = q.Has("dryRun")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watchPath || isTrue(q.Get("watch")):
			info.verb = "watch"
		case info.name == "":
			info.verb = "list"
		default:
			info.verb = "get"
		}
	case http.MethodPost:
		info.verb = "create"
	case http.MethodPut:
		info.verb = "update"
	case http.MethodPatch:
		info.verb = "patch"
	case http.MethodDelete:
		if info.name == "" {
			info.verb = "deletecollection"
		} else {
			info.verb = "delete"
		}
	default:
		info.verb = strings.ToLower(r.Method)
	}
	// The streaming subresources are authorized as "create" whatever the
	// method: WebSocket clients must use GET (upstream checks "create" for
	// them too).
	if info.group == "" && info.resource == "pods" && (info.sub == "exec" || info.sub == "attach" || info.sub == "portforward") {
		info.verb = "create"
	}
	return info
}

func isTrue(s string) bool { return s == "true" || s == "1" }

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
