package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// testHooks returns the webhook server's mux, which routes to the
// webhooks as the real server does, and the buffer its log goes to.
func testHooks(t *testing.T) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv := newWebhookServer(config{webhookPort: 9443, certDir: t.TempDir()}, log)
	return srv.WebhookMux(), &logs
}

// widget is the JSON of a Widget of the given version with the given
// metadata fields and spec.
func widget(t *testing.T, version, name string, metadata map[string]any, spec map[string]any) []byte {
	t.Helper()
	meta := map[string]any{"name": name, "namespace": "crw"}
	for k, v := range metadata {
		meta[k] = v
	}
	obj := map[string]any{"apiVersion": "crwatch.skiff.io/" + version, "kind": "Widget", "metadata": meta}
	if spec != nil {
		obj["spec"] = spec
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// admit sends req to the webhook at path as the API server does and
// returns the response of the AdmissionReview it answers.
func admit(t *testing.T, ctx context.Context, h http.Handler, path string, req admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	req.UID = types.UID("uid-" + path)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", path, rec.Code, rec.Body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("decoding the AdmissionReview of %s: %v\n%s", path, err, rec.Body)
	}
	if review.Kind != "AdmissionReview" || review.APIVersion != "admission.k8s.io/v1" {
		t.Errorf("%s answered a %s %s", path, review.APIVersion, review.Kind)
	}
	if review.Response == nil {
		t.Fatalf("%s answered no response", path)
	}
	if review.Response.UID != req.UID {
		t.Errorf("%s answered uid %q, want %q", path, review.Response.UID, req.UID)
	}
	return review.Response
}

func request(op admissionv1.Operation, name string, object, old []byte) admissionv1.AdmissionRequest {
	return admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: "crwatch.skiff.io", Version: "v1", Kind: "Widget"},
		Resource:  metav1.GroupVersionResource{Group: "crwatch.skiff.io", Version: "v1", Resource: "widgets"},
		Name:      name,
		Namespace: "crw",
		Operation: op,
		Object:    runtime.RawExtension{Raw: object},
		OldObject: runtime.RawExtension{Raw: old},
	}
}

func TestMutate(t *testing.T) {
	h, _ := testHooks(t)
	noLabels := widget(t, "v1", "w1", nil, map[string]any{"data": map[string]any{"a": "1"}})
	otherLabels := widget(t, "v1", "w1", map[string]any{"labels": map[string]any{"app": "x"}}, nil)
	red := widget(t, "v1", "w1", map[string]any{"labels": map[string]any{colorLabel: "red"}}, nil)
	for _, tc := range []struct {
		name      string
		req       admissionv1.AdmissionRequest
		wantPatch string // the JSONPatch, "" for none
		wantCode  int32
		wantAllow bool
		wantLabel map[string]string // the labels after the patch
	}{{
		name:      "create without labels",
		req:       request(admissionv1.Create, "w1", noLabels, nil),
		wantPatch: `[{"op":"add","path":"/metadata/labels","value":{"crwatch.skiff.io/color":"blue"}}]`,
		wantCode:  200, wantAllow: true,
		wantLabel: map[string]string{colorLabel: "blue"},
	}, {
		name:      "update with other labels",
		req:       request(admissionv1.Update, "w1", otherLabels, otherLabels),
		wantPatch: `[{"op":"add","path":"/metadata/labels/crwatch.skiff.io~1color","value":"blue"}]`,
		wantCode:  200, wantAllow: true,
		wantLabel: map[string]string{"app": "x", colorLabel: "blue"},
	}, {
		name:     "create with a color",
		req:      request(admissionv1.Create, "w1", red, nil),
		wantCode: 200, wantAllow: true,
		wantLabel: map[string]string{colorLabel: "red"},
	}, {
		name:     "delete",
		req:      request(admissionv1.Delete, "w1", nil, noLabels),
		wantCode: 200, wantAllow: true,
	}, {
		name:     "not a widget",
		req:      request(admissionv1.Create, "c1", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"}}`), nil),
		wantCode: 400,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			resp := admit(t, t.Context(), h, mutatePath, tc.req)
			if resp.Allowed != tc.wantAllow || resp.Result == nil || resp.Result.Code != tc.wantCode {
				t.Fatalf("allowed=%v result=%+v, want allowed=%v code %d", resp.Allowed, resp.Result, tc.wantAllow, tc.wantCode)
			}
			if tc.wantPatch == "" {
				if len(resp.Patch) != 0 || resp.PatchType != nil || len(resp.Warnings) != 0 {
					t.Errorf("patch %s (type %v), warnings %q: want none", resp.Patch, resp.PatchType, resp.Warnings)
				}
			} else {
				if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
					t.Errorf("patchType %v, want JSONPatch", resp.PatchType)
				}
				if diff := cmp.Diff(decodeAny(t, []byte(tc.wantPatch)), decodeAny(t, resp.Patch)); diff != "" {
					t.Errorf("patch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{defaultedWarning}, resp.Warnings); diff != "" {
					t.Errorf("warnings (-want +got):\n%s", diff)
				}
			}
			if tc.wantLabel == nil {
				return
			}
			// The patch applied as the API server applies it.
			patched := tc.req.Object.Raw
			if len(resp.Patch) > 0 {
				p, err := jsonpatch.DecodePatch(resp.Patch)
				if err != nil {
					t.Fatalf("decoding the patch: %v", err)
				}
				if patched, err = p.Apply(patched); err != nil {
					t.Fatalf("applying the patch: %v", err)
				}
			}
			var w struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(patched, &w); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantLabel, w.Metadata.Labels); diff != "" {
				t.Errorf("labels after the patch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	h, logs := testHooks(t)
	const denied = `spec.data.forbidden: crwatch does not allow the key "forbidden"`
	for _, tc := range []struct {
		name        string
		req         admissionv1.AdmissionRequest
		wantAllow   bool
		wantCode    int32
		wantReason  metav1.StatusReason
		wantMessage string
		wantLog     string
	}{{
		name:      "allowed",
		req:       request(admissionv1.Create, "w1", widget(t, "v1", "w1", nil, map[string]any{"data": map[string]any{"a": "1"}}), nil),
		wantAllow: true, wantCode: 200,
		wantLog: "msg=webhook path=/validate-widget name=w1 allowed=true namespace=crw operation=CREATE\n",
	}, {
		name:      "no spec",
		req:       request(admissionv1.Create, "w1", widget(t, "v1", "w1", nil, nil), nil),
		wantAllow: true, wantCode: 200,
	}, {
		name:     "forbidden key",
		req:      request(admissionv1.Create, "w2", widget(t, "v1", "w2", nil, map[string]any{"data": map[string]any{"a": "1", "forbidden": "x"}}), nil),
		wantCode: 422, wantReason: metav1.StatusReasonInvalid, wantMessage: denied,
		wantLog: `msg=webhook path=/validate-widget name=w2 allowed=false namespace=crw operation=CREATE code=422 message="spec.data.forbidden: crwatch does not allow the key \"forbidden\""` + "\n",
	}, {
		name:     "forbidden key on update",
		req:      request(admissionv1.Update, "w2", widget(t, "v1", "w2", nil, map[string]any{"data": map[string]any{"forbidden": ""}}), widget(t, "v1", "w2", nil, nil)),
		wantCode: 422, wantReason: metav1.StatusReasonInvalid, wantMessage: denied,
	}, {
		name:     "forbidden key in v2",
		req:      request(admissionv1.Create, "w3", widget(t, "v2", "w3", nil, map[string]any{"entries": []any{map[string]any{"key": "forbidden", "value": "x"}}}), nil),
		wantCode: 422, wantReason: metav1.StatusReasonInvalid, wantMessage: `spec.entries: crwatch does not allow the key "forbidden"`,
	}, {
		name:      "delete",
		req:       request(admissionv1.Delete, "w2", nil, widget(t, "v1", "w2", nil, map[string]any{"data": map[string]any{"forbidden": "x"}})),
		wantAllow: true, wantCode: 200,
	}, {
		name:        "data not a map",
		req:         request(admissionv1.Create, "w4", widget(t, "v1", "w4", nil, map[string]any{"data": "x"}), nil),
		wantCode:    400,
		wantMessage: "spec.data: .spec.data accessor error: x is of the type string, expected map[string]interface{}",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			resp := admit(t, t.Context(), h, validatePath, tc.req)
			if resp.Allowed != tc.wantAllow {
				t.Errorf("allowed=%v, want %v", resp.Allowed, tc.wantAllow)
			}
			want := &metav1.Status{Code: tc.wantCode, Reason: tc.wantReason, Message: tc.wantMessage}
			if tc.wantReason != "" {
				want.Status = metav1.StatusFailure
			}
			if diff := cmp.Diff(want, resp.Result); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if len(resp.Patch) != 0 || len(resp.Warnings) != 0 {
				t.Errorf("patch %s, warnings %q: want none", resp.Patch, resp.Warnings)
			}
			if tc.wantLog != "" && !strings.HasSuffix(logs.String(), tc.wantLog) {
				t.Errorf("log %q, want it to end in %q", logs.String(), tc.wantLog)
			}
		})
	}
}

func TestSleepFor(t *testing.T) {
	for _, tc := range []struct {
		annotations map[string]string
		want        time.Duration
		wantErr     bool
	}{
		{annotations: nil, want: 0},
		{annotations: map[string]string{"other": "5s"}, want: 0},
		{annotations: map[string]string{sleepAnnotation: "5s"}, want: 5 * time.Second},
		{annotations: map[string]string{sleepAnnotation: "1500ms"}, want: 1500 * time.Millisecond},
		{annotations: map[string]string{sleepAnnotation: "1h"}, want: maxSleep},
		{annotations: map[string]string{sleepAnnotation: "-1s"}, want: 0},
		{annotations: map[string]string{sleepAnnotation: "soon"}, wantErr: true},
	} {
		got, err := sleepFor(tc.annotations)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("sleepFor(%v) = %v, %v; want %v, error %v", tc.annotations, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSlow(t *testing.T) {
	h, _ := testHooks(t)
	sleepy := func(d string) []byte {
		return widget(t, "v1", "w1", map[string]any{"annotations": map[string]any{sleepAnnotation: d}}, nil)
	}

	t.Run("sleeps then allows", func(t *testing.T) {
		start := time.Now()
		resp := admit(t, t.Context(), h, slowPath, request(admissionv1.Create, "w1", sleepy("200ms"), nil))
		if took := time.Since(start); took < 200*time.Millisecond {
			t.Errorf("answered after %v, want at least 200ms", took)
		}
		if !resp.Allowed || resp.Result.Code != 200 || len(resp.Warnings) != 0 {
			t.Errorf("allowed=%v result=%+v warnings=%q, want allowed with code 200", resp.Allowed, resp.Result, resp.Warnings)
		}
	})

	t.Run("stops when the caller goes", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		resp := admit(t, ctx, h, slowPath, request(admissionv1.Update, "w1", sleepy("30s"), sleepy("30s")))
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("answered after %v with a cancelled context", took)
		}
		if !resp.Allowed {
			t.Errorf("result %+v, want allowed", resp.Result)
		}
	})

	t.Run("delete reads the old object", func(t *testing.T) {
		start := time.Now()
		resp := admit(t, t.Context(), h, slowPath, request(admissionv1.Delete, "w1", nil, sleepy("100ms")))
		if took := time.Since(start); took < 100*time.Millisecond || !resp.Allowed {
			t.Errorf("answered allowed=%v after %v, want allowed after at least 100ms", resp.Allowed, took)
		}
	})

	t.Run("bad duration", func(t *testing.T) {
		resp := admit(t, t.Context(), h, slowPath, request(admissionv1.Create, "w1", sleepy("soon"), nil))
		want := []string{`crwatch: ignoring annotation crwatch.skiff.io/sleep="soon": time: invalid duration "soon"`}
		if !resp.Allowed || cmp.Diff(want, resp.Warnings) != "" {
			t.Errorf("allowed=%v warnings=%q, want allowed with warnings %q", resp.Allowed, resp.Warnings, want)
		}
	})

	t.Run("not a widget", func(t *testing.T) {
		resp := admit(t, t.Context(), h, slowPath, request(admissionv1.Create, "w1", []byte(`{"apiVersion":"v1","kind":"Pod"}`), nil))
		if resp.Allowed || resp.Result.Code != 400 {
			t.Errorf("allowed=%v result=%+v, want denied with code 400", resp.Allowed, resp.Result)
		}
	})
}

func decodeAny(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}
