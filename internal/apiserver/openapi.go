package apiserver

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// OpenAPI v3, reduced to what clients need from it today: one document per
// group version listing every path and its operations, with the
// x-kubernetes-group-version-kind extension and the query parameters each
// operation takes. That is what kubectl reads to learn that the server does
// field validation (so it sends fieldValidation=Strict instead of
// validating on the client). Schemas of the types (kubectl explain,
// server-side apply's type converter) are not generated yet: components is
// empty, and kubectl falls back to its built-in types for strategic merge
// patches. docs/compatibility.md says so.

type openAPIDoc struct {
	once  sync.Once
	index []byte
	docs  map[string][]byte // "api/v1", "apis/apps/v1"
	etags map[string]string
}

var writeParams = []map[string]any{
	{"name": "dryRun", "in": "query", "schema": map[string]string{"type": "string"}, "description": "When present, indicates that modifications should not be persisted."},
	{"name": "fieldManager", "in": "query", "schema": map[string]string{"type": "string"}},
	{"name": "fieldValidation", "in": "query", "schema": map[string]string{"type": "string"},
		"description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict."},
}

func (s *Server) buildOpenAPI() *openAPIDoc {
	d := &openAPIDoc{docs: map[string][]byte{}, etags: map[string]string{}}
	paths := map[string]map[string]any{}
	for _, sv := range s.resources {
		res := sv.res
		gvPath := "api/" + res.GroupVersion.Version
		if res.GroupVersion.Group != "" {
			gvPath = "apis/" + res.GroupVersion.Group + "/" + res.GroupVersion.Version
		}
		if paths[gvPath] == nil {
			paths[gvPath] = map[string]any{}
		}
		gvk := map[string]string{"group": res.GroupVersion.Group, "version": res.GroupVersion.Version, "kind": res.Kind}
		base := "/" + gvPath + "/"
		if res.Namespaced {
			base += "namespaces/{namespace}/"
		}
		op := func(id string, params []map[string]any, patch bool) map[string]any {
			o := map[string]any{"operationId": id, "x-kubernetes-group-version-kind": gvk, "parameters": params,
				"responses": map[string]any{"200": map[string]any{"description": "OK"}}}
			if patch {
				o["x-kubernetes-action"] = "patch"
			}
			return o
		}
		item := map[string]any{
			"get":    op("read"+res.Kind, nil, false),
			"put":    op("replace"+res.Kind, writeParams, false),
			"patch":  op("patch"+res.Kind, writeParams, true),
			"delete": op("delete"+res.Kind, writeParams[:1], false),
		}
		paths[gvPath][base+res.Name+"/{name}"] = item
		paths[gvPath][base+res.Name] = map[string]any{
			"get":  op("list"+res.Kind, nil, false),
			"post": op("create"+res.Kind, writeParams, false),
		}
		for _, sub := range subresources(res) {
			paths[gvPath][base+res.Name+"/{name}/"+sub.name] = map[string]any{
				"patch": op("patch"+res.Kind+strings.ToUpper(sub.name[:1])+sub.name[1:], writeParams, true),
			}
		}
	}
	index := map[string]any{"paths": map[string]any{}}
	for gv, p := range paths {
		doc := map[string]any{
			"openapi": "3.0.0",
			"info":    map[string]string{"title": "Kubernetes", "version": Version.GitVersion},
			"paths":   p,
			"components": map[string]any{
				"schemas": map[string]any{},
			},
		}
		raw, _ := json.Marshal(doc)
		sum := sha512.Sum512(raw)
		etag := strings.ToUpper(hex.EncodeToString(sum[:]))
		d.docs[gv], d.etags[gv] = raw, etag
		index["paths"].(map[string]any)[gv] = map[string]string{"serverRelativeURL": "/openapi/v3/" + gv + "?hash=" + etag}
	}
	d.index, _ = json.Marshal(index)
	return d
}

func (s *Server) serveOpenAPIV3(w http.ResponseWriter, r *http.Request) {
	s.openapiOnce.Do(func() { s.openapi = s.buildOpenAPI() })
	p := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/openapi/v3"), "/")
	if p == "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.index)
		return
	}
	doc, ok := s.openapi.docs[p]
	if !ok {
		s.serveNotFound(w, r)
		return
	}
	etag := `"` + s.openapi.etags[p] + `"`
	w.Header().Set("Etag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("hash") != "" {
		w.Header().Set("Cache-Control", "public, immutable")
	}
	_, _ = w.Write(doc)
}
