package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Resource is one served resource as the documents describe it.
type Resource struct {
	// GVK is the kind served; Plural the resource name in URLs.
	GVK        schema.GroupVersionKind
	Plural     string
	Namespaced bool
	// Object and List are values (or pointers) of the kind's Go type and
	// of its list type.
	Object, List any
	// Schema, when set, describes the kind instead of Object and List:
	// a custom resource's, which has no Go type. Its apiVersion, kind and
	// metadata properties are set here (ObjectMeta), and the list is
	// built around it, named as upstream names them (ModelName).
	Schema *spec.Schema
	// Verbs are the verbs served on the resource (get, list, watch,
	// create, update, patch, delete, deletecollection).
	Verbs []string
	// Subresources are served below /{name}/.
	Subresources []Subresource
}

// Subresource is one subresource: its name, the verbs it serves and the
// kind of its body, which Object (nil for none, as with the streaming
// subresources) holds.
type Subresource struct {
	Name   string
	GVK    schema.GroupVersionKind
	Object any
	Verbs  []string
}

// GroupVersionPath is the path of a group version below /openapi/v3:
// "api/v1" or "apis/<group>/<version>".
func GroupVersionPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// BuildV3 returns the OpenAPI v3 document of every group version the resources
// are in, keyed by GroupVersionPath, each holding that group version's
// paths and the schemas they reach.
func BuildV3(resources []Resource, version string) (map[string][]byte, error) {
	b := NewBuilder(V3)
	common := b.addCommon(resources)
	byGV := map[string][]Resource{}
	for _, r := range resources {
		p := GroupVersionPath(r.GVK.GroupVersion())
		byGV[p] = append(byGV[p], r)
	}
	// Most definitions (ObjectMeta, PodSpec...) are in many documents:
	// each is marshalled once.
	defJSON := map[string]json.RawMessage{}
	docs := map[string][]byte{}
	for gv, rs := range byGV {
		paths := map[string]any{}
		roots := append([]string(nil), common...)
		for _, r := range rs {
			for _, p := range b.paths(r) {
				paths[p.path] = p.item
				roots = append(roots, p.refs...)
			}
		}
		closure := b.Closure(roots...)
		names := make([]string, 0, len(closure))
		for name := range closure {
			names = append(names, name)
		}
		sort.Strings(names)
		// The document is assembled by hand around the marshalled
		// definitions: encoding/json would re-scan every one of them.
		var buf bytes.Buffer
		buf.WriteString(`{"components":{"schemas":{`)
		for i, name := range names {
			raw, ok := defJSON[name]
			if !ok {
				var err error
				if raw, err = json.Marshal(closure[name]); err != nil {
					return nil, fmt.Errorf("openapi v3 schema %s: %w", name, err)
				}
				defJSON[name] = raw
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			q, _ := json.Marshal(name)
			buf.Write(q)
			buf.WriteByte(':')
			buf.Write(raw)
		}
		buf.WriteString(`},"securitySchemes":{"BearerToken":`)
		rest, err := json.Marshal(bearerToken)
		if err != nil {
			return nil, err
		}
		buf.Write(rest)
		buf.WriteString(`}},`)
		rest, err = json.Marshal(map[string]any{
			"openapi":  "3.0.0",
			"info":     map[string]string{"title": "Kubernetes", "version": version},
			"paths":    paths,
			"security": []any{map[string]any{"BearerToken": []string{}}},
		})
		if err != nil {
			return nil, fmt.Errorf("openapi v3 document %s: %w", gv, err)
		}
		buf.Write(rest[1:]) // the object's members after "{"
		raw := buf.Bytes()
		docs[gv] = raw
	}
	return docs, nil
}

// BuildV2 returns the Swagger 2.0 document of all the resources.
func BuildV2(resources []Resource, version string) ([]byte, error) {
	b := NewBuilder(V2)
	b.addCommon(resources)
	paths := map[string]any{}
	for _, r := range resources {
		for _, p := range b.paths(r) {
			paths[p.path] = p.item
		}
	}
	doc := map[string]any{
		"swagger":             "2.0",
		"info":                map[string]string{"title": "Kubernetes", "version": version},
		"paths":               paths,
		"definitions":         b.Definitions(),
		"securityDefinitions": map[string]any{"BearerToken": bearerToken},
		"security":            []any{map[string]any{"BearerToken": []string{}}},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi v2 document: %w", err)
	}
	return raw, nil
}

var bearerToken = map[string]string{"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}

// Definitions returns the OpenAPI v3 schemas of the resources' kinds and
// lists and everything they reach, keyed by definition name: the input of
// managedfields.NewTypeConverter.
func Definitions(resources []Resource) map[string]*spec.Schema {
	b := NewBuilder(V3)
	b.addCommon(resources)
	for _, r := range resources {
		b.addResource(r)
	}
	return b.Definitions()
}

// addCommon defines the meta types every group version's operations use
// and gives them their GVKs in each served group version, as upstream
// registers them in every group. It returns their names.
func (b *Builder) addCommon(resources []Resource) []string {
	names := []string{
		b.Add(&metav1.Status{}, schema.GroupVersionKind{Version: "v1", Kind: "Status"}),
		b.Add(&metav1.Patch{}),
		b.Add(&metav1.APIResourceList{}, schema.GroupVersionKind{Version: "v1", Kind: "APIResourceList"}),
	}
	del, watch := b.Add(&metav1.DeleteOptions{}), b.Add(&metav1.WatchEvent{})
	for _, r := range resources {
		gv := r.GVK.GroupVersion()
		b.Add(&metav1.DeleteOptions{}, gv.WithKind("DeleteOptions"))
		b.Add(&metav1.WatchEvent{}, gv.WithKind("WatchEvent"))
	}
	return append(names, del, watch)
}

func (b *Builder) addResource(r Resource) (kind, list string) {
	if r.Schema != nil {
		return b.addSchema(r)
	}
	kind = b.Add(r.Object, r.GVK)
	if r.List != nil {
		list = b.Add(r.List, r.GVK.GroupVersion().WithKind(r.GVK.Kind+"List"))
	}
	for _, sub := range r.Subresources {
		if sub.Object != nil {
			b.Add(sub.Object, sub.GVK)
		}
	}
	return kind, list
}

// addSchema defines a kind given by its schema, and its list.
func (b *Builder) addSchema(r Resource) (kind, list string) {
	objectMeta := b.Add(&metav1.ObjectMeta{})
	listMeta := b.Add(&metav1.ListMeta{})
	kind = ModelName(r.GVK)
	var s spec.Schema
	switch {
	case b.dialect == V2 && preservesUnknown(r.Schema):
		// As upstream: kubectl's v2 client validation would refuse any
		// field outside the properties listed, so an object that keeps
		// unknown fields is published as a bare object.
		s = spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	default:
		s = copySchema(*r.Schema)
		if b.dialect == V2 {
			toV2(&s)
		}
		if s.Properties == nil {
			s.Properties = make(map[string]spec.Schema, 3)
		}
		typeMeta(&s)
		s.Properties["metadata"] = b.describe(b.Ref(objectMeta), objectMetaDescription)
	}
	b.define(kind, &s, objectMeta)
	b.gvks[kind] = []schema.GroupVersionKind{r.GVK}
	list = kind + "List"
	items := b.Ref(kind)
	l := &spec.Schema{SchemaProps: spec.SchemaProps{
		Description: fmt.Sprintf("%s is a list of %s", r.GVK.Kind+"List", r.GVK.Kind),
		Type:        spec.StringOrArray{"object"},
		Required:    []string{"items"},
		Properties: map[string]spec.Schema{
			"items":    {SchemaProps: spec.SchemaProps{Description: "List of " + r.Plural, Type: spec.StringOrArray{"array"}, Items: &spec.SchemaOrArray{Schema: &items}}},
			"metadata": b.Ref(listMeta),
		},
	}}
	typeMeta(l)
	b.define(list, l, kind, listMeta)
	b.gvks[list] = []schema.GroupVersionKind{r.GVK.GroupVersion().WithKind(r.GVK.Kind + "List")}
	for _, sub := range r.Subresources {
		if sub.Object != nil {
			b.Add(sub.Object, sub.GVK)
		}
	}
	return kind, list
}

// typeMeta adds the apiVersion and kind properties to s.
func typeMeta(s *spec.Schema) {
	s.Properties["apiVersion"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"string"},
		Description: "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}}
	s.Properties["kind"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"string"},
		Description: "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}}
}

// ModelName is the definition name upstream gives a custom resource's
// kind: its group reversed, then version and kind
// ("io.k8s.networking.gateway.v1.HTTPRoute" for
// gateway.networking.k8s.io/v1 HTTPRoute).
func ModelName(gvk schema.GroupVersionKind) string {
	parts := strings.Split(gvk.Group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".") + "." + gvk.Version + "." + gvk.Kind
}

type pathItem struct {
	path string
	item map[string]any
	refs []string // definitions the operations name
}

// operation is one HTTP operation, dialect-neutral until rendered.
type operation struct {
	method, id, action, description string
	gvk                             schema.GroupVersionKind
	params                          []map[string]any
	body                            string   // definition name of the request body
	bodyTypes                       []string // its content types
	responses                       map[int]string
}

var codeText = map[int]string{200: "OK", 201: "Created", 202: "Accepted"}

func queryParam(name, typ, desc string) map[string]any {
	return map[string]any{"name": name, "in": "query", "type": typ, "description": desc}
}

var (
	pDryRun          = queryParam("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed")
	pFieldManager    = queryParam("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.")
	pFieldValidation = queryParam("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.")
	pForce           = queryParam("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.")
	pGrace           = queryParam("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.")
	pPropagation     = queryParam("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.")
	pOrphan          = queryParam("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.")
	listParams       = []map[string]any{
		queryParam("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion."),
		queryParam("continue", "string", "The continue option should be set when retrieving more results from the server."),
		queryParam("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
		queryParam("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
		queryParam("limit", "integer", "limit is a maximum number of responses to return for a list call."),
		queryParam("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
		queryParam("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
		queryParam("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection."),
		queryParam("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
		queryParam("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
	}
	writeParams  = []map[string]any{pDryRun, pFieldManager, pFieldValidation}
	patchParams  = []map[string]any{pDryRun, pFieldManager, pFieldValidation, pForce}
	deleteParams = []map[string]any{pDryRun, pGrace, pOrphan, pPropagation}
	patchTypes   = []string{"application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}
	anyType      = []string{"*/*"}
)

// opID is upstream's operation id: verb, group and version in Pascal case,
// "Namespaced" where it applies, the kind and the subresource
// ("patchCoreV1NamespacedPodStatus", "listAppsV1DeploymentForAllNamespaces").
func opID(verb string, gvk schema.GroupVersionKind, namespaced bool, sub, suffix string) string {
	group := "Core"
	if gvk.Group != "" {
		group = ""
		for _, part := range strings.Split(strings.TrimSuffix(gvk.Group, ".k8s.io"), ".") {
			group += pascal(part)
		}
	}
	ns := ""
	if namespaced {
		ns = "Namespaced"
	}
	return verb + group + pascal(gvk.Version) + ns + gvk.Kind + pascal(sub) + suffix
}

func pascal(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func has(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

// paths returns the path items of one resource, its subresources
// included.
func (b *Builder) paths(r Resource) []pathItem {
	kind, list := b.addResource(r)
	gvPath := "/" + GroupVersionPath(r.GVK.GroupVersion()) + "/"
	base := gvPath
	if r.Namespaced {
		base += "namespaces/{namespace}/"
	}
	gvk, ns := r.GVK, r.Namespaced
	statusName := "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
	deleteName := "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
	patchName := "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
	var out []pathItem
	add := func(path string, ops []operation, pathParams ...string) {
		if len(ops) == 0 {
			return
		}
		item := map[string]any{}
		var refs []string
		for _, op := range ops {
			item[op.method] = b.renderOp(op)
			refs = append(refs, op.body)
			for _, r := range op.responses {
				refs = append(refs, r)
			}
		}
		var params []map[string]any
		for _, p := range pathParams {
			desc := map[string]string{"name": "name of the " + r.GVK.Kind, "namespace": "object name and auth scope, such as for teams and projects"}[p]
			params = append(params, map[string]any{"name": p, "in": "path", "required": true, "type": "string", "description": desc})
		}
		params = append(params, queryParam("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."))
		item["parameters"] = b.renderParams(params)
		out = append(out, pathItem{path: path, item: item, refs: refs})
	}
	nsParams := func(extra ...string) []string {
		if ns {
			return append([]string{"namespace"}, extra...)
		}
		return extra
	}

	var coll []operation
	if has(r.Verbs, "list") && list != "" {
		coll = append(coll, operation{method: "get", id: opID("list", gvk, ns, "", ""), action: "list", description: "list or watch objects of kind " + gvk.Kind,
			gvk: gvk, params: listParams, responses: map[int]string{200: list}})
	}
	if has(r.Verbs, "create") {
		coll = append(coll, operation{method: "post", id: opID("create", gvk, ns, "", ""), action: "post", description: "create a " + gvk.Kind,
			gvk: gvk, params: writeParams, body: kind, bodyTypes: anyType, responses: map[int]string{200: kind, 201: kind, 202: kind}})
	}
	if has(r.Verbs, "deletecollection") {
		coll = append(coll, operation{method: "delete", id: opID("deletecollection", gvk, ns, "", ""), action: "deletecollection", description: "delete collection of " + gvk.Kind,
			gvk: gvk, params: append(append([]map[string]any{}, deleteParams...), listParams...), body: deleteName, bodyTypes: anyType, responses: map[int]string{200: statusName}})
	}
	add(base+r.Plural, coll, nsParams()...)
	if ns && has(r.Verbs, "list") && list != "" {
		add(gvPath+r.Plural, []operation{{method: "get", id: opID("list", gvk, false, "", "ForAllNamespaces"), action: "list", description: "list or watch objects of kind " + gvk.Kind,
			gvk: gvk, params: listParams, responses: map[int]string{200: list}}})
	}

	var one []operation
	if has(r.Verbs, "get") {
		one = append(one, operation{method: "get", id: opID("read", gvk, ns, "", ""), action: "get", description: "read the specified " + gvk.Kind,
			gvk: gvk, responses: map[int]string{200: kind}})
	}
	if has(r.Verbs, "update") {
		one = append(one, operation{method: "put", id: opID("replace", gvk, ns, "", ""), action: "put", description: "replace the specified " + gvk.Kind,
			gvk: gvk, params: writeParams, body: kind, bodyTypes: anyType, responses: map[int]string{200: kind, 201: kind}})
	}
	if has(r.Verbs, "patch") {
		one = append(one, operation{method: "patch", id: opID("patch", gvk, ns, "", ""), action: "patch", description: "partially update the specified " + gvk.Kind,
			gvk: gvk, params: patchParams, body: patchName, bodyTypes: patchTypes, responses: map[int]string{200: kind, 201: kind}})
	}
	if has(r.Verbs, "delete") {
		one = append(one, operation{method: "delete", id: opID("delete", gvk, ns, "", ""), action: "delete", description: "delete a " + gvk.Kind,
			gvk: gvk, params: deleteParams, body: deleteName, bodyTypes: anyType, responses: map[int]string{200: statusName, 202: statusName}})
	}
	add(base+r.Plural+"/{name}", one, nsParams("name")...)

	for _, sub := range r.Subresources {
		subKind := ""
		if sub.Object != nil {
			subKind = b.Add(sub.Object, sub.GVK)
		} else if r.Schema != nil && sub.GVK == r.GVK {
			subKind = kind // a custom resource's status
		}
		var ops []operation
		for _, v := range sub.Verbs {
			op := operation{gvk: sub.GVK}
			switch {
			case subKind == "":
				// Streaming and proxy subresources take no object.
				op.method, op.action = map[string]string{"get": "get", "create": "post", "update": "put", "patch": "patch", "delete": "delete"}[v], "connect"
				op.id, op.description = opID("connect"+pascal(op.method), gvk, ns, sub.Name, ""), "connect "+op.method+" requests to "+sub.Name+" of "+gvk.Kind
				op.gvk = sub.GVK
				op.responses = map[int]string{200: ""}
			case v == "get":
				op.method, op.action, op.id = "get", "get", opID("read", gvk, ns, sub.Name, "")
				op.description, op.responses = "read "+sub.Name+" of the specified "+gvk.Kind, map[int]string{200: subKind}
			case v == "update":
				op.method, op.action, op.id = "put", "put", opID("replace", gvk, ns, sub.Name, "")
				op.description, op.params, op.body, op.bodyTypes = "replace "+sub.Name+" of the specified "+gvk.Kind, writeParams, subKind, anyType
				op.responses = map[int]string{200: subKind, 201: subKind}
			case v == "patch":
				op.method, op.action, op.id = "patch", "patch", opID("patch", gvk, ns, sub.Name, "")
				op.description, op.params, op.body, op.bodyTypes = "partially update "+sub.Name+" of the specified "+gvk.Kind, patchParams, patchName, patchTypes
				op.responses = map[int]string{200: subKind, 201: subKind}
			case v == "create":
				op.method, op.action, op.id = "post", "post", opID("create", gvk, ns, sub.Name, "")
				op.description, op.params, op.body, op.bodyTypes = "create "+sub.Name+" of a "+gvk.Kind, writeParams, subKind, anyType
				op.responses = map[int]string{200: subKind, 201: subKind, 202: subKind}
			default:
				continue
			}
			if op.method != "" {
				ops = append(ops, op)
			}
		}
		add(base+r.Plural+"/{name}/"+sub.Name, ops, nsParams("name")...)
	}
	return out
}

var responseTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}

// renderOp writes op in the builder's dialect.
func (b *Builder) renderOp(op operation) map[string]any {
	gv := op.gvk.Group
	if gv == "" {
		gv = "core"
	}
	o := map[string]any{
		"operationId":                     op.id,
		"description":                     op.description,
		"tags":                            []string{strings.ReplaceAll(strings.TrimSuffix(gv, ".k8s.io"), ".", "") + "_" + op.gvk.Version},
		"x-kubernetes-action":             op.action,
		"x-kubernetes-group-version-kind": map[string]string{"group": op.gvk.Group, "version": op.gvk.Version, "kind": op.gvk.Kind},
	}
	params := b.renderParams(op.params)
	codes := make([]int, 0, len(op.responses))
	for c := range op.responses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	responses := map[string]any{"401": map[string]string{"description": "Unauthorized"}}
	if b.dialect == V3 {
		if op.body != "" {
			content := map[string]any{}
			for _, t := range op.bodyTypes {
				content[t] = map[string]any{"schema": b.refMap(op.body)}
			}
			o["requestBody"] = map[string]any{"content": content, "required": true}
		}
		for _, c := range codes {
			resp := map[string]any{"description": codeText[c]}
			if name := op.responses[c]; name != "" {
				content := map[string]any{}
				for _, t := range responseTypes {
					content[t] = map[string]any{"schema": b.refMap(name)}
				}
				resp["content"] = content
			} else {
				resp["content"] = map[string]any{"*/*": map[string]any{"schema": map[string]string{"type": "string"}}}
			}
			responses[fmt.Sprint(c)] = resp
		}
	} else {
		if op.body != "" {
			params = append(params, map[string]any{"name": "body", "in": "body", "required": true, "schema": b.refMap(op.body)})
			o["consumes"] = op.bodyTypes
		} else {
			o["consumes"] = anyType
		}
		o["produces"] = responseTypes
		o["schemes"] = []string{"https"}
		for _, c := range codes {
			resp := map[string]any{"description": codeText[c]}
			if name := op.responses[c]; name != "" {
				resp["schema"] = b.refMap(name)
			} else {
				resp["schema"] = map[string]string{"type": "string"}
			}
			responses[fmt.Sprint(c)] = resp
		}
	}
	if len(params) > 0 {
		o["parameters"] = params
	}
	o["responses"] = responses
	return o
}

// refMap is Ref as a plain map: cheaper to marshal than a spec.Schema.
func (b *Builder) refMap(name string) map[string]string {
	return map[string]string{"$ref": b.dialect.refPrefix() + name}
}

// renderParams writes parameters in the dialect: v2 puts the type on the
// parameter, v3 in its schema.
func (b *Builder) renderParams(params []map[string]any) []map[string]any {
	if b.dialect == V2 {
		return params
	}
	out := make([]map[string]any, 0, len(params))
	for _, p := range params {
		q := map[string]any{}
		for k, v := range p {
			if k == "type" {
				q["schema"] = map[string]any{"type": v, "uniqueItems": true}
				continue
			}
			q[k] = v
		}
		out = append(out, q)
	}
	return out
}
