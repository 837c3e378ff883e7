package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The same Widget in v1 and v2, with metadata, status and fields that
// neither schema knows, all of which the conversion must keep; the
// generation is past float64's exact integers.
const (
	fullV1 = `{"apiVersion":"crwatch.skiff.io/v1","kind":"Widget",
		"metadata":{"name":"w1","namespace":"crw","uid":"0b5e","resourceVersion":"42","generation":9007199254740993,
			"labels":{"crwatch.skiff.io/color":"blue"},"annotations":{"a":"b"},"creationTimestamp":"2026-01-02T03:04:05Z"},
		"spec":{"data":{"b":"2","a":"1","empty":""},"other":{"x":[1,2.5,"y"]}},
		"status":{"seen":"0123456789abcdef","observedGeneration":7},
		"extra":true}`
	fullV2 = `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget",
		"metadata":{"name":"w1","namespace":"crw","uid":"0b5e","resourceVersion":"42","generation":9007199254740993,
			"labels":{"crwatch.skiff.io/color":"blue"},"annotations":{"a":"b"},"creationTimestamp":"2026-01-02T03:04:05Z"},
		"spec":{"entries":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"empty","value":""}],"other":{"x":[1,2.5,"y"]}},
		"status":{"seen":"0123456789abcdef","observedGeneration":7},
		"extra":true}`
)

// convert posts a ConversionReview of objects to /convert and returns
// its response.
func convert(t *testing.T, h http.Handler, to string, objects ...string) *apiextensionsv1.ConversionResponse {
	t.Helper()
	review := apiextensionsv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "ConversionReview"},
		Request:  &apiextensionsv1.ConversionRequest{UID: "uid-1", DesiredAPIVersion: to},
	}
	for _, o := range objects {
		review.Request.Objects = append(review.Request.Objects, runtime.RawExtension{Raw: []byte(o)})
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	rec := postConvert(h, body)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /convert: HTTP %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got apiextensionsv1.ConversionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decoding the ConversionReview: %v\n%s", err, rec.Body)
	}
	if got.APIVersion != "apiextensions.k8s.io/v1" || got.Kind != "ConversionReview" || got.Request != nil || got.Response == nil {
		t.Fatalf("answer is not a ConversionReview with only a response:\n%s", rec.Body)
	}
	if got.Response.UID != "uid-1" {
		t.Errorf("uid %q, want uid-1", got.Response.UID)
	}
	return got.Response
}

func postConvert(h http.Handler, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, convertPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// converted checks that resp succeeded and returns its objects.
func converted(t *testing.T, resp *apiextensionsv1.ConversionResponse) []string {
	t.Helper()
	if resp.Result.Status != metav1.StatusSuccess || resp.Result.Message != "" {
		t.Fatalf("result %+v, want Success", resp.Result)
	}
	out := make([]string, 0, len(resp.ConvertedObjects))
	for _, o := range resp.ConvertedObjects {
		out = append(out, string(o.Raw))
	}
	return out
}

// sameJSON compares two JSON objects, numbers by their digits.
func sameJSON(t *testing.T, want, got string) {
	t.Helper()
	w, err := decodeJSONObject([]byte(want))
	if err != nil {
		t.Fatalf("want: %v", err)
	}
	g, err := decodeJSONObject([]byte(got))
	if err != nil {
		t.Fatalf("got: %v", err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("converted object (-want +got):\n%s", diff)
	}
}

func TestConvert(t *testing.T) {
	h, logs := testHooks(t)
	v1 := func(spec string) string {
		return `{"apiVersion":"crwatch.skiff.io/v1","kind":"Widget","metadata":{"name":"w"}` + spec + `}`
	}
	v2 := func(spec string) string {
		return `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget","metadata":{"name":"w"}` + spec + `}`
	}
	// Each pair converts both ways.
	for _, tc := range []struct{ name, v1, v2 string }{
		{"full", fullV1, fullV2},
		{"empty data", v1(`,"spec":{"data":{}}`), v2(`,"spec":{"entries":[]}`)},
		{"null data", v1(`,"spec":{"data":null}`), v2(`,"spec":{"entries":null}`)},
		{"no data", v1(`,"spec":{"other":1}`), v2(`,"spec":{"other":1}`)},
		{"no spec", v1(``), v2(``)},
		{"null spec", v1(`,"spec":null`), v2(`,"spec":null`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := converted(t, convert(t, h, widgetV2, tc.v1))
			if len(got) != 1 {
				t.Fatalf("%d objects, want 1", len(got))
			}
			sameJSON(t, tc.v2, got[0])

			back := converted(t, convert(t, h, widgetV1, got[0]))
			if len(back) != 1 {
				t.Fatalf("%d objects, want 1", len(back))
			}
			sameJSON(t, tc.v1, back[0]) // the round trip v1→v2→v1

			sameJSON(t, tc.v1, converted(t, convert(t, h, widgetV1, tc.v2))[0])
			sameJSON(t, tc.v2, converted(t, convert(t, h, widgetV2, tc.v1))[0])
		})
	}

	t.Run("unsorted entries", func(t *testing.T) {
		got := converted(t, convert(t, h, widgetV1, v2(`,"spec":{"entries":[{"key":"b","value":"2"},{"key":"a","value":"1"}]}`)))
		sameJSON(t, v1(`,"spec":{"data":{"a":"1","b":"2"}}`), got[0])
	})

	t.Run("several objects of either version, in order", func(t *testing.T) {
		logs.Reset()
		got := converted(t, convert(t, h, widgetV2, fullV1, fullV2, strings.Replace(v1(`,"spec":{"data":{"k":"v"}}`), `"w"`, `"w2"`, 1)))
		if len(got) != 3 {
			t.Fatalf("%d objects, want 3", len(got))
		}
		sameJSON(t, fullV2, got[0])
		sameJSON(t, fullV2, got[1])
		sameJSON(t, strings.Replace(v2(`,"spec":{"entries":[{"key":"k","value":"v"}]}`), `"w"`, `"w2"`, 1), got[2])
		if want := "msg=webhook path=/convert name=w1,w1,w2 result=Success desiredAPIVersion=crwatch.skiff.io/v2 objects=3"; !strings.Contains(logs.String(), want) {
			t.Errorf("log %q, want it to hold %q", logs.String(), want)
		}
	})

	t.Run("no objects", func(t *testing.T) {
		if got := converted(t, convert(t, h, widgetV1)); len(got) != 0 {
			t.Errorf("%d objects, want none", len(got))
		}
	})
}

func TestConvertFailure(t *testing.T) {
	h, _ := testHooks(t)
	for _, tc := range []struct {
		name, to, object, wantMessage string
	}{
		{"unknown desired version", "crwatch.skiff.io/v3", fullV1,
			`crwatch: desiredAPIVersion "crwatch.skiff.io/v3": want crwatch.skiff.io/v1 or crwatch.skiff.io/v2`},
		{"unknown object version", widgetV2, `{"apiVersion":"crwatch.skiff.io/v0","kind":"Widget","metadata":{"name":"w"}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v2: apiVersion "crwatch.skiff.io/v0": want crwatch.skiff.io/v1 or crwatch.skiff.io/v2`},
		{"not a widget", widgetV2, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`,
			`crwatch: converting object 0 ("c") to crwatch.skiff.io/v2: kind "ConfigMap": want Widget`},
		{"not an object", widgetV2, `[1]`,
			`crwatch: converting object 0 ("") to crwatch.skiff.io/v2: decoding the object: json: cannot unmarshal array into Go value of type map[string]interface {}`},
		{"data value not a string", widgetV2, `{"apiVersion":"crwatch.skiff.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"data":{"a":1}}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v2: spec.data.a: a json.Number, not a string`},
		{"data not a map", widgetV2, `{"apiVersion":"crwatch.skiff.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"data":"a"}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v2: spec.data: a string, not an object`},
		{"spec not a map", widgetV2, `{"apiVersion":"crwatch.skiff.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":[]}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v2: spec: a []interface {}, not an object`},
		{"v1 with entries", widgetV2, `{"apiVersion":"crwatch.skiff.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"entries":[]}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v2: spec.entries: not a field of v1`},
		{"v2 with data", widgetV1, `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget","metadata":{"name":"w"},"spec":{"data":{}}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v1: spec.data: not a field of v2`},
		{"duplicate key", widgetV1, `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget","metadata":{"name":"w"},"spec":{"entries":[{"key":"a","value":"1"},{"key":"a","value":"2"}]}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v1: spec.entries: duplicate key "a"`},
		{"entry with another field", widgetV1, `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget","metadata":{"name":"w"},"spec":{"entries":[{"key":"a","value":"1","x":"y"}]}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v1: spec.entries[0]: want exactly a string key and a string value`},
		{"entry without value", widgetV1, `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget","metadata":{"name":"w"},"spec":{"entries":[{"key":"a"}]}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v1: spec.entries[0]: want exactly a string key and a string value`},
		{"entries not a list", widgetV1, `{"apiVersion":"crwatch.skiff.io/v2","kind":"Widget","metadata":{"name":"w"},"spec":{"entries":{}}}`,
			`crwatch: converting object 0 ("w") to crwatch.skiff.io/v1: spec.entries: a map[string]interface {}, not a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bad object comes second: the whole request fails.
			resp := convert(t, h, tc.to, fullV2, tc.object)
			want := metav1.Status{Status: metav1.StatusFailure, Message: strings.Replace(tc.wantMessage, "object 0", "object 1", 1)}
			if diff := cmp.Diff(want, resp.Result); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if len(resp.ConvertedObjects) != 0 {
				t.Errorf("%d converted objects, want none", len(resp.ConvertedObjects))
			}
		})
	}
}

func TestConvertBadReview(t *testing.T) {
	h, _ := testHooks(t)
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `not json`, "decoding the ConversionReview: invalid character"},
		{"no request", `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}`, "the ConversionReview has no request"},
		{"empty", ``, "decoding the ConversionReview: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := postConvert(h, []byte(tc.body))
			if rec.Code != http.StatusBadRequest || !strings.HasPrefix(rec.Body.String(), tc.want) {
				t.Errorf("HTTP %d %q, want 400 starting with %q", rec.Code, rec.Body, tc.want)
			}
		})
	}
}
