package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The two versions of Widget /convert converts between. v1 holds
// spec.data, a map of strings; v2 holds the same as spec.entries, a list
// of {key, value} sorted by key (testdata/crwatch-widget-crd-v2.yaml).
const (
	widgetV1 = "crwatch.skiff.io/v1"
	widgetV2 = "crwatch.skiff.io/v2"
)

// maxConversionReview bounds the body /convert reads; it is
// controller-runtime's bound for an AdmissionReview.
const maxConversionReview = 7 << 20

// converter is the CRD conversion webhook: an http.Handler taking an
// apiextensions.k8s.io/v1 ConversionReview. A body that is not one, or has
// no request, gets HTTP 400 and no review (there is no uid to answer);
// otherwise the answer is a ConversionReview whose response has the
// request's uid and either result.status "Success" and the converted
// objects, in order, or "Failure", a message and no objects.
//
// controller-runtime's own conversion webhook wants typed Go objects with
// Hub and Convertible methods; converting the JSON directly keeps every
// field it does not know about, which is what makes the conversion
// lossless.
type converter struct {
	log *slog.Logger
}

func (c *converter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var review apiextensionsv1.ConversionReview
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConversionReview)).Decode(&review); err != nil {
		c.log.Info("webhook", "path", convertPath, "name", "", "result", metav1.StatusFailure, "err", err)
		http.Error(w, fmt.Sprintf("decoding the ConversionReview: %v", err), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		c.log.Info("webhook", "path", convertPath, "name", "", "result", metav1.StatusFailure, "err", "no request")
		http.Error(w, "the ConversionReview has no request", http.StatusBadRequest)
		return
	}
	resp, names := convertRequest(review.Request)
	c.log.Info("webhook", "path", convertPath, "name", strings.Join(names, ","), "result", resp.Result.Status,
		"desiredAPIVersion", review.Request.DesiredAPIVersion, "objects", len(review.Request.Objects), "message", resp.Result.Message)
	out := apiextensionsv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Kind: "ConversionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		c.log.Info("writing the ConversionReview", "err", err)
	}
}

// convertRequest converts every object of req to req.DesiredAPIVersion. It
// also returns the objects' names, for the log line.
func convertRequest(req *apiextensionsv1.ConversionRequest) (*apiextensionsv1.ConversionResponse, []string) {
	resp := &apiextensionsv1.ConversionResponse{UID: req.UID}
	names := make([]string, 0, len(req.Objects))
	if to := req.DesiredAPIVersion; to != widgetV1 && to != widgetV2 {
		resp.Result = metav1.Status{
			Status:  metav1.StatusFailure,
			Message: fmt.Sprintf("crwatch: desiredAPIVersion %q: want %s or %s", to, widgetV1, widgetV2),
		}
		return resp, names
	}
	converted := make([]runtime.RawExtension, 0, len(req.Objects))
	for i, o := range req.Objects {
		raw, name, err := convertWidget(o.Raw, req.DesiredAPIVersion)
		names = append(names, name)
		if err != nil {
			resp.Result = metav1.Status{
				Status:  metav1.StatusFailure,
				Message: fmt.Sprintf("crwatch: converting object %d (%q) to %s: %v", i, name, req.DesiredAPIVersion, err),
			}
			return resp, names
		}
		converted = append(converted, runtime.RawExtension{Raw: raw})
	}
	resp.ConvertedObjects = converted
	resp.Result = metav1.Status{Status: metav1.StatusSuccess}
	return resp, names
}

// convertWidget converts one Widget, as JSON, to the apiVersion to, and
// returns it with its name. Only apiVersion and spec.data or spec.entries
// change: metadata, status and any other field are kept as they are,
// numbers included (they are never turned into float64 and back).
func convertWidget(raw []byte, to string) ([]byte, string, error) {
	obj, err := decodeJSONObject(raw)
	if err != nil {
		return nil, "", err
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if kind, _ := obj["kind"].(string); kind != widgetGVK.Kind {
		return nil, name, fmt.Errorf("kind %q: want %s", kind, widgetGVK.Kind)
	}
	from, _ := obj["apiVersion"].(string)
	if err := convertObject(obj, from, to); err != nil {
		return nil, name, err
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, name, fmt.Errorf("encoding: %w", err)
	}
	return out, name, nil
}

// convertObject converts the decoded Widget obj, in place, from the
// apiVersion from to to.
func convertObject(obj map[string]any, from, to string) error {
	if to != widgetV1 && to != widgetV2 {
		return fmt.Errorf("desiredAPIVersion %q: want %s or %s", to, widgetV1, widgetV2)
	}
	var err error
	switch from {
	case to:
		return nil
	case widgetV1:
		err = v1ToV2(obj)
	case widgetV2:
		err = v2ToV1(obj)
	default:
		return fmt.Errorf("apiVersion %q: want %s or %s", from, widgetV1, widgetV2)
	}
	if err != nil {
		return err
	}
	obj["apiVersion"] = to
	return nil
}

// v1ToV2 replaces spec.data by spec.entries, sorted by key. An absent
// spec.data gives no spec.entries, a null one a null one, and an empty
// map an empty list, so that v2ToV1 gives back exactly what it was given.
func v1ToV2(obj map[string]any) error {
	spec, err := specOf(obj)
	if spec == nil || err != nil {
		return err
	}
	if _, ok := spec["entries"]; ok {
		return errors.New("spec.entries: not a field of v1")
	}
	data, ok := spec["data"]
	if !ok {
		return nil
	}
	delete(spec, "data")
	if data == nil {
		spec["entries"] = nil
		return nil
	}
	m, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("spec.data: a %T, not an object", data)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := make([]any, 0, len(keys))
	for _, k := range keys {
		v, ok := m[k].(string)
		if !ok {
			return fmt.Errorf("spec.data.%s: a %T, not a string", k, m[k])
		}
		entries = append(entries, map[string]any{"key": k, "value": v})
	}
	spec["entries"] = entries
	return nil
}

// v2ToV1 replaces spec.entries by spec.data, the inverse of v1ToV2. It
// fails where v1 cannot hold what v2 says: a duplicate key, or an entry
// with a field other than key and value.
func v2ToV1(obj map[string]any) error {
	spec, err := specOf(obj)
	if spec == nil || err != nil {
		return err
	}
	if _, ok := spec["data"]; ok {
		return errors.New("spec.data: not a field of v2")
	}
	raw, ok := spec["entries"]
	if !ok {
		return nil
	}
	entries, err := v2Entries(obj)
	if err != nil {
		return err
	}
	delete(spec, "entries")
	if raw == nil {
		spec["data"] = nil
		return nil
	}
	data := make(map[string]any, len(entries))
	for _, e := range entries {
		if _, dup := data[e.key]; dup {
			return fmt.Errorf("spec.entries: duplicate key %q", e.key)
		}
		data[e.key] = e.value
	}
	spec["data"] = data
	return nil
}

// entry is one element of a v2 Widget's spec.entries.
type entry struct{ key, value string }

// v2Entries reads the spec.entries of the v2 Widget obj, in order; nil
// when there are none. Each entry must have a string key and a string
// value and nothing else.
func v2Entries(obj map[string]any) ([]entry, error) {
	spec, err := specOf(obj)
	if spec == nil || err != nil {
		return nil, err
	}
	raw, ok := spec["entries"]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("spec.entries: a %T, not a list", raw)
	}
	entries := make([]entry, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("spec.entries[%d]: a %T, not an object", i, item)
		}
		k, kok := m["key"].(string)
		v, vok := m["value"].(string)
		if !kok || !vok || len(m) != 2 {
			return nil, fmt.Errorf("spec.entries[%d]: want exactly a string key and a string value", i)
		}
		entries = append(entries, entry{key: k, value: v})
	}
	return entries, nil
}

// specOf returns obj's spec, nil when it has none.
func specOf(obj map[string]any) (map[string]any, error) {
	raw, ok := obj["spec"]
	if !ok || raw == nil {
		return nil, nil
	}
	spec, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("spec: a %T, not an object", raw)
	}
	return spec, nil
}

// decodeJSONObject decodes a JSON object keeping its numbers as
// json.Number, which encodes back to the very same digits.
func decodeJSONObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decoding the object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("decoding the object: not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding the object: data after the object")
	}
	return obj, nil
}
