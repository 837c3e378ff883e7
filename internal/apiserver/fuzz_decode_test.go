package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/registry"
)

const protobufType = "application/vnd.kubernetes.protobuf"

// exerciseStrategy runs what a write does with a decoded object before
// storage: default, prepare, validate metadata and type, table row, field
// set, conversion. Errors are expected; panics are not.
func exerciseStrategy(res *registry.Resource, obj runtime.Object) {
	ctx := context.Background()
	sv := &served{res: res, stored: res}
	if res.Strategy.Default != nil {
		res.Strategy.Default(obj)
	}
	if res.Strategy.PrepareForCreate != nil {
		res.Strategy.PrepareForCreate(ctx, obj)
	} else {
		registry.DefaultPrepareForCreate(ctx, obj)
	}
	if m, err := meta.Accessor(obj); err == nil {
		_ = validateMeta(sv, m)
	}
	if res.Strategy.Validate != nil {
		_ = res.Strategy.Validate(obj)
	}
	if res.Strategy.ValidateUpdate != nil {
		_ = res.Strategy.ValidateUpdate(obj, res.New())
	}
	if res.Table != nil {
		_ = res.Table.Row(obj)
	}
	if res.Fields != nil {
		_ = res.Fields(obj)
	}
	if res.ToStored != nil {
		if st, err := res.ToStored(obj); err == nil && res.FromStored != nil {
			_, _ = res.FromStored(st)
		}
	}
}

// FuzzDecodeProtobuf feeds arbitrary protobuf bodies (the
// application/vnd.kubernetes.protobuf envelope) through what a create
// does before storage, for every served resource, as
// FuzzDecodeDefaultValidate does for JSON and YAML. Nothing may panic,
// and the decoded object, as JSON, stays within a bound of the body:
// protobuf omits what JSON spells out (an empty message is two bytes),
// so the bound is looser than maxGrowth.
func FuzzDecodeProtobuf(f *testing.F) {
	resources := allResources()
	enc := mediaInfo(protobufType).Serializer
	targets := patchTargets(f)
	for _, tg := range targets {
		var buf bytes.Buffer
		if err := enc.Encode(tg.obj, &buf); err != nil {
			f.Fatal(err)
		}
		for i, res := range resources {
			if res.GroupVersionKind() == tg.gvk {
				f.Add(uint8(i), buf.Bytes())
			}
		}
	}
	f.Add(uint8(0), []byte("k8s\x00"))
	f.Add(uint8(1), []byte("k8s\x00\x0a\x04\x0a\x02v1\x12\x00"))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		res := resources[int(which)%len(resources)]
		for _, directive := range []string{metav1.FieldValidationStrict, metav1.FieldValidationIgnore} {
			obj, _, err := decodeWith(protobufType, directive, body, res.GroupVersionKind(), res.New(), nil)
			if err != nil {
				continue
			}
			if b, err := json.Marshal(obj); err == nil && len(b) > 256*len(body)+maxGrowthSlack {
				t.Fatalf("a protobuf body of %d bytes decoded to a %s of %d bytes of JSON", len(body), res.GroupVersionKind().Kind, len(b))
			}
			exerciseStrategy(res, obj)
		}
	})
}

// FuzzRequest feeds arbitrary paths, queries, headers and bodies through
// the decoders of a request's metadata: the path, content negotiation,
// list and watch options (selectors, resourceVersion, continue, limit),
// patch and delete options (DeleteOptions from the query and a JSON,
// YAML or protobuf body), dryRun, fieldValidation and timeouts. Nothing
// may panic.
func FuzzRequest(f *testing.F) {
	s := storagelessServer(f)
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, "WATCH"}
	var svs []*served
	for _, gvr := range []schema.GroupVersionResource{{Version: "v1", Resource: "pods"}, {Version: "v1", Resource: "configmaps"}, {Group: "apps", Version: "v1", Resource: "deployments"}} {
		if sv := s.resources[gvr]; sv != nil {
			svs = append(svs, sv)
		}
	}
	if len(svs) == 0 {
		f.Fatal("no served resources")
	}
	f.Add(uint8(0), "/api/v1/namespaces/default/pods", "labelSelector=app%3Dweb,tier+in+(a,b)&fieldSelector=spec.nodeName%3Dn&limit=10&resourceVersion=0&watch=1&timeoutSeconds=30",
		"application/json;as=Table;v=v1;g=meta.k8s.io", "", []byte(nil))
	f.Add(uint8(4), "/api/v1/namespaces/default/configmaps/x", "gracePeriodSeconds=0&propagationPolicy=Foreground&dryRun=All",
		"application/vnd.kubernetes.protobuf, */*;q=0.5", "application/json", []byte(`{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"resourceVersion":"5"}}`))
	f.Add(uint8(3), "/apis/apps/v1/namespaces/d/deployments/x/scale", "fieldManager=m&force=true&fieldValidation=Strict&timeout=1s",
		"application/yaml", "application/apply-patch+yaml; charset=utf-8", []byte("orphanDependents: true\n"))
	f.Add(uint8(1), "/api/v1/watch/namespaces/a/pods/b", "resourceVersionMatch=NotOlderThan&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MX0&sendInitialEvents=true",
		"*/*", "application/vnd.kubernetes.protobuf", []byte("k8s\x00\x0a\x00"))
	f.Fuzz(func(t *testing.T, method uint8, path, query, accept, contentType string, body []byte) {
		r := &http.Request{
			Method: methods[int(method)%len(methods)],
			URL:    &url.URL{Path: path, RawQuery: query},
			Header: http.Header{"Accept": {accept}, "Content-Type": {contentType}},
		}
		info := parseRequest(r)
		_ = longRunning(info)
		_, _ = negotiateOutput(r)
		_, _, _ = inputSerializer(contentType, true)
		_, _ = fieldValidation(r)
		_, _ = dryRun(r)
		_, _ = requestTimeout(r, time.Minute)
		sv := svs[int(method)%len(svs)]
		_, _, _ = s.listOptions(r, info, sv)
		_, _ = patchOptions(r, contentType)
		_, _ = deleteOptions(r, body)
	})
}
