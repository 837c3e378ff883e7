package apiserver

import (
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"sort"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiff-io/skiff/internal/registry"
)

// defaultVerbs are what a resource without Verbs supports.
var defaultVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// discoveryDocs are the discovery documents, computed once: the set of
// served resources does not change while the server runs.
type discoveryDocs struct {
	versions   *metav1.APIVersions
	groups     *metav1.APIGroupList
	groupByKey map[string]*metav1.APIGroup
	lists      map[schema.GroupVersion]*metav1.APIResourceList
	aggregated map[bool]*apidiscoveryv2.APIGroupDiscoveryList // key: legacy (/api)
	// stale are the remote group/versions whose resources are not known
	// (their server has not answered): aggregated discovery says so.
	stale map[schema.GroupVersion]bool
}

// groupOrder lists groups in upstream's discovery order; groups not named
// here follow, sorted.
var groupOrder = []string{"", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
	"autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io", "policy",
	"rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
	"apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
	"discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "apiregistration.k8s.io"}

// BuiltinGroupRank is the place of a built-in group in upstream's
// discovery order (0 for the core group); ok is false for other groups.
func BuiltinGroupRank(group string) (rank int, ok bool) {
	i := slices.Index(groupOrder, group)
	return i, i >= 0
}

// versionLess orders versions within a group, preferred first, as
// upstream orders a custom resource's versions: GA before beta before
// alpha, higher numbers first (v2, v1, v1beta2, v1beta1, v1alpha1).
func versionLess(a, b string) bool {
	return version.CompareKubeAwareVersionStrings(a, b) > 0
}

// localGroupPriority is where a group that upstream does not list comes
// among the remote ones: a custom resource's group, which upstream
// registers with groupPriorityMinimum 1000.
const localGroupPriority = 1000

// newDiscovery builds the documents of the served resources and of the
// remote APIs, which take over their group/versions.
func newDiscovery(resources []*registry.Resource, remote []RemoteAPI, address string) *discoveryDocs {
	d := &discoveryDocs{
		groupByKey: map[string]*metav1.APIGroup{},
		lists:      map[schema.GroupVersion]*metav1.APIResourceList{},
		aggregated: map[bool]*apidiscoveryv2.APIGroupDiscoveryList{},
		stale:      map[schema.GroupVersion]bool{},
	}
	versionsOf := map[string][]string{}
	priority := map[string]int32{}
	for _, res := range localResources(resources, remote) {
		if res == nil {
			continue
		}
		gv := res.GroupVersion
		list, ok := d.lists[gv]
		if !ok {
			list = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
			d.lists[gv] = list
			versionsOf[gv.Group] = append(versionsOf[gv.Group], gv.Version)
		}
		list.APIResources = append(list.APIResources, apiResources(res)...)
		priority[gv.Group] = localGroupPriority
	}
	for _, r := range remote {
		gv := r.GroupVersion
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		if r.Resources != nil {
			list.APIResources = r.Resources.APIResources
		} else {
			d.stale[gv] = true
		}
		d.lists[gv] = list
		versionsOf[gv.Group] = append(versionsOf[gv.Group], gv.Version)
		priority[gv.Group] = max(priority[gv.Group], r.GroupPriorityMinimum)
	}
	cidrs := []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: address}}
	if address == "" {
		cidrs = nil
	} else if _, _, err := net.SplitHostPort(address); err != nil {
		cidrs = nil
	}
	d.versions = &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}, ServerAddressByClientCIDRs: cidrs}

	var groups []string
	for g := range versionsOf {
		if g != "" {
			groups = append(groups, g)
		}
	}
	rank := map[string]int{}
	for i, g := range groupOrder {
		rank[g] = i + 1
	}
	sort.Slice(groups, func(i, j int) bool {
		ri, rj := rank[groups[i]], rank[groups[j]]
		if ri == 0 {
			ri = len(groupOrder) + 1
		}
		if rj == 0 {
			rj = len(groupOrder) + 1
		}
		if ri != rj {
			return ri < rj
		}
		if pi, pj := priority[groups[i]], priority[groups[j]]; pi != pj {
			return pi > pj
		}
		return groups[i] < groups[j]
	})
	d.groups = &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range groups {
		vs := versionsOf[g]
		sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
		grp := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: g, ServerAddressByClientCIDRs: cidrs}
		for _, v := range vs {
			grp.Versions = append(grp.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g + "/" + v, Version: v})
		}
		grp.PreferredVersion = grp.Versions[0]
		d.groups.Groups = append(d.groups.Groups, grp)
		cp := grp
		d.groupByKey[g] = &cp
	}
	for i := range d.groups.Groups {
		d.groups.Groups[i].TypeMeta = metav1.TypeMeta{}
	}
	d.aggregated[true] = d.aggregate([]string{""}, versionsOf)
	d.aggregated[false] = d.aggregate(groups, versionsOf)
	return d
}

// apiResources returns the discovery entries of a resource and its
// subresources.
func apiResources(res *registry.Resource) []metav1.APIResource {
	verbs := defaultVerbs
	if res.Verbs != nil {
		verbs = res.Verbs
	}
	out := []metav1.APIResource{{
		Name: res.Name, SingularName: res.Singular, Namespaced: res.Namespaced, Kind: res.Kind,
		Verbs: verbs, ShortNames: res.ShortNames, Categories: res.Categories,
	}}
	for _, sub := range subresources(res) {
		out = append(out, metav1.APIResource{
			Name: res.Name + "/" + sub.name, Namespaced: res.Namespaced, Kind: sub.kind,
			Group: sub.group, Version: sub.version, Verbs: sub.verbs,
		})
	}
	return out
}

type subresource struct {
	name, kind, group, version string
	verbs                      metav1.Verbs
}

// subresources lists what skiff serves under a resource.
func subresources(res *registry.Resource) []subresource {
	var subs []subresource
	if res.Status {
		subs = append(subs, subresource{name: "status", kind: res.Kind, verbs: metav1.Verbs{"get", "patch", "update"}})
	}
	if res.Scale != nil {
		subs = append(subs, subresource{name: "scale", kind: "Scale", group: "autoscaling", version: "v1", verbs: metav1.Verbs{"get", "patch", "update"}})
	}
	for _, x := range res.Subresources {
		subs = append(subs, subresource{name: x.Name, kind: res.Kind, verbs: metav1.Verbs{"get", "patch", "update"}})
	}
	if res.GroupVersion.Group == "" && res.Name == "pods" {
		subs = append(subs, subresource{name: "binding", kind: "Binding", verbs: metav1.Verbs{"create"}})
		subs = append(subs, subresource{name: "eviction", kind: "Eviction", group: "policy", version: "v1", verbs: metav1.Verbs{"create"}})
		// Served by the kubelet through the API server (proxy_*.go).
		subs = append(subs, subresource{name: "attach", kind: "PodAttachOptions", verbs: metav1.Verbs{"create", "get"}})
		subs = append(subs, subresource{name: "exec", kind: "PodExecOptions", verbs: metav1.Verbs{"create", "get"}})
		subs = append(subs, subresource{name: "log", kind: "Pod", verbs: metav1.Verbs{"get"}})
		subs = append(subs, subresource{name: "portforward", kind: "PodPortForwardOptions", verbs: metav1.Verbs{"create", "get"}})
		subs = append(subs, subresource{name: "proxy", kind: "PodProxyOptions", verbs: metav1.Verbs{"create", "delete", "get", "patch", "update"}})
	}
	if res.GroupVersion.Group == "" && res.Name == "services" {
		subs = append(subs, subresource{name: "proxy", kind: "ServiceProxyOptions", verbs: metav1.Verbs{"create", "delete", "get", "patch", "update"}})
	}
	if res.GroupVersion.Group == "" && res.Name == "nodes" {
		subs = append(subs, subresource{name: "proxy", kind: "NodeProxyOptions", verbs: metav1.Verbs{"create", "delete", "get", "patch", "update"}})
	}
	if res.GroupVersion.Group == "" && res.Name == "serviceaccounts" {
		subs = append(subs, subresource{name: "token", kind: "TokenRequest", group: "authentication.k8s.io", version: "v1", verbs: metav1.Verbs{"create"}})
	}
	if res.GroupVersion.Group == "" && res.Name == "namespaces" {
		subs = append(subs, subresource{name: "finalize", kind: "Namespace", verbs: metav1.Verbs{"update"}})
	}
	return subs
}

// aggregate builds the aggregated discovery document (apidiscovery.k8s.io/v2)
// of the given groups.
func (d *discoveryDocs) aggregate(groups []string, versionsOf map[string][]string) *apidiscoveryv2.APIGroupDiscoveryList {
	out := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	for _, g := range groups {
		vs := append([]string(nil), versionsOf[g]...)
		sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
		grp := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		for _, v := range vs {
			ver := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			gv := schema.GroupVersion{Group: g, Version: v}
			if d.stale[gv] {
				ver.Freshness = apidiscoveryv2.DiscoveryFreshnessStale
			}
			list := d.lists[gv]
			byName := map[string]*apidiscoveryv2.APIResourceDiscovery{}
			for _, r := range list.APIResources {
				scope := apidiscoveryv2.ScopeCluster
				if r.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				if parent, sub, ok := cutSub(r.Name); ok {
					p := byName[parent]
					if p == nil {
						continue
					}
					gv := metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
					if gv.Version == "" {
						gv.Group, gv.Version = g, v
					}
					p.Subresources = append(p.Subresources, apidiscoveryv2.APISubresourceDiscovery{
						Subresource: sub, ResponseKind: &gv, Verbs: r.Verbs,
					})
					continue
				}
				ver.Resources = append(ver.Resources, apidiscoveryv2.APIResourceDiscovery{
					Resource: r.Name, SingularResource: r.SingularName, Scope: scope, Verbs: r.Verbs,
					ShortNames: r.ShortNames, Categories: r.Categories,
					ResponseKind: &metav1.GroupVersionKind{Group: g, Version: v, Kind: r.Kind},
				})
				byName[r.Name] = &ver.Resources[len(ver.Resources)-1]
			}
			// byName points into ver.Resources: safe because a resource's
			// subresources come right after it, before the next append.
			grp.Versions = append(grp.Versions, ver)
		}
		out.Items = append(out.Items, grp)
	}
	return out
}

func cutSub(name string) (string, string, bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			return name[:i], name[i+1:], true
		}
	}
	return name, "", false
}

// serveDiscovery answers /api, /apis, /apis/<group> and the group-version
// resource lists. ok is false when the path is none of those.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, info requestInfo) bool {
	parts := splitPath(r.URL.Path)
	format, okFormat := negotiateOutput(r)
	var obj runtime.Object
	switch {
	case len(parts) == 1 && (parts[0] == "api" || parts[0] == "apis"):
		if okFormat && format.target == asAPIGroupDiscoveryList {
			obj = s.discoveryDocs().aggregated[parts[0] == "api"]
			break
		}
		if parts[0] == "api" {
			obj = s.discoveryDocs().versions
		} else {
			obj = s.discoveryDocs().groups
		}
	case len(parts) == 2 && parts[0] == "apis":
		g, ok := s.discoveryDocs().groupByKey[parts[1]]
		if !ok {
			return false
		}
		obj = g
	case len(parts) == 2 && parts[0] == "api" || len(parts) == 3 && parts[0] == "apis":
		list, ok := s.discoveryDocs().lists[schema.GroupVersion{Group: info.group, Version: info.version}]
		if !ok {
			return false
		}
		obj = list
	default:
		return false
	}
	if !okFormat || (format.target != asObject && format.target != asAPIGroupDiscoveryList) {
		format = outputFormat{info: mediaInfo("application/json")}
	}
	if format.target == asAPIGroupDiscoveryList && obj != s.discoveryDocs().aggregated[true] && obj != s.discoveryDocs().aggregated[false] {
		format.target = asObject
	}
	if format.info.MediaType != "application/json" && format.info.MediaType != "application/yaml" {
		// Discovery documents are plain JSON upstream too, except for
		// protobuf-capable clients of the aggregated form.
		if format.target != asAPIGroupDiscoveryList {
			format = outputFormat{info: mediaInfo("application/json")}
		}
	}
	writeObject(w, http.StatusOK, format, obj)
	return true
}

// writeJSON writes v as JSON with a status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeObject encodes obj in the negotiated format.
func writeObject(w http.ResponseWriter, code int, format outputFormat, obj runtime.Object) {
	w.Header().Set("Content-Type", format.contentType())
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = format.encoder().Encode(obj, w)
}
