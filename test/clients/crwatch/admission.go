package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const (
	// colorLabel is the label /mutate-widget defaults to defaultColor.
	colorLabel   = "crwatch.skiff.io/color"
	defaultColor = "blue"
	// defaultedWarning is the warning /mutate-widget returns when it
	// defaults colorLabel; the API server hands it to the client.
	defaultedWarning = "crwatch: defaulted the color"
	// forbiddenKey is the data key /validate-widget denies.
	forbiddenKey = "forbidden"
	// sleepAnnotation holds the Go duration /slow sleeps for, at most
	// maxSleep.
	sleepAnnotation = "crwatch.skiff.io/sleep"
	maxSleep        = 30 * time.Second
)

// admissionHooks are the admission webhooks of --webhooks. Each is an
// admission.Handler wrapped in controller-runtime's admission.Webhook,
// which decodes the AdmissionReview, sets the response's uid and, when the
// handler leaves them unset, its result code (200) and patchType.
//
// Every request logs one line, "webhook", with the path, the object's name
// and the decision; the e2e tests read these lines.
type admissionHooks struct {
	log *slog.Logger
}

// mutate defaults colorLabel on Widgets being created or updated: when
// the label is missing it answers with a JSONPatch adding it (or adding
// metadata.labels when there are none) and the warning defaultedWarning.
// Anything else is allowed unchanged.
func (a *admissionHooks) mutate(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return a.decided(mutatePath, req, nil, admission.Allowed(""))
	}
	w, err := decodeWidget(req.Object.Raw)
	if err != nil {
		return a.decided(mutatePath, req, nil, admission.Errored(http.StatusBadRequest, err))
	}
	labels := w.GetLabels()
	if _, ok := labels[colorLabel]; ok {
		return a.decided(mutatePath, req, w, admission.Allowed(""))
	}
	if labels == nil {
		labels = map[string]string{}
	}
	labels[colorLabel] = defaultColor
	w.SetLabels(labels)
	defaulted, err := w.MarshalJSON()
	if err != nil {
		return a.decided(mutatePath, req, w, admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the defaulted widget: %w", err)))
	}
	// The patch is computed against the raw object as received, so that
	// it holds only the label and nothing decoding happened to reorder.
	resp := admission.PatchResponseFromRaw(req.Object.Raw, defaulted).WithWarnings(defaultedWarning)
	return a.decided(mutatePath, req, w, resp, "defaulted", colorLabel+"="+defaultColor)
}

// validate denies a Widget whose data has the key forbiddenKey, with code
// 422 and reason Invalid; the API server passes this status to the client,
// prefixing the message with `admission webhook "<name>" denied the
// request: `. Everything else, DELETE included, is allowed.
func (a *admissionHooks) validate(_ context.Context, req admission.Request) admission.Response {
	if len(req.Object.Raw) == 0 { // DELETE and CONNECT have no new object
		return a.decided(validatePath, req, nil, admission.Allowed(""))
	}
	w, err := decodeWidget(req.Object.Raw)
	if err != nil {
		return a.decided(validatePath, req, nil, admission.Errored(http.StatusBadRequest, err))
	}
	field, err := forbiddenField(w)
	if err != nil {
		return a.decided(validatePath, req, w, admission.Errored(http.StatusBadRequest, err))
	}
	if field != "" {
		return a.decided(validatePath, req, w, invalid(fmt.Sprintf("%s: crwatch does not allow the key %q", field, forbiddenKey)))
	}
	return a.decided(validatePath, req, w, admission.Allowed(""))
}

// forbiddenField returns the path of the field holding forbiddenKey in
// the Widget's data, or "" when there is none. It reads spec.data of v1
// and spec.entries of v2, so that the webhook works whichever version its
// configuration's rules name.
func forbiddenField(w *unstructured.Unstructured) (string, error) {
	if w.GroupVersionKind().Version == "v2" {
		entries, err := v2Entries(w.Object)
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			if e.key == forbiddenKey {
				return "spec.entries", nil
			}
		}
		return "", nil
	}
	data, _, err := unstructured.NestedMap(w.Object, "spec", "data")
	if err != nil {
		return "", fmt.Errorf("spec.data: %w", err)
	}
	if _, ok := data[forbiddenKey]; ok {
		return "spec.data." + forbiddenKey, nil
	}
	return "", nil
}

// invalid is a denial as the API server's own validation words one: code
// 422, reason Invalid. admission.Denied would say 403 Forbidden.
func invalid(msg string) admission.Response {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusUnprocessableEntity,
			Reason:  metav1.StatusReasonInvalid,
			Message: msg,
		},
	}}
}

// slow sleeps for the duration in the Widget's sleepAnnotation (capped at
// maxSleep), then allows: the e2e test uses it to check that the API
// server gives up after the webhook's timeoutSeconds. It returns early
// when the request's context ends, that is when the API server closes the
// connection or the server shuts down. A missing annotation means no
// sleep; an unparsable one is ignored with a warning.
func (a *admissionHooks) slow(ctx context.Context, req admission.Request) admission.Response {
	raw := req.Object.Raw
	if len(raw) == 0 {
		raw = req.OldObject.Raw // DELETE
	}
	w, err := decodeWidget(raw)
	if err != nil {
		return a.decided(slowPath, req, nil, admission.Errored(http.StatusBadRequest, err))
	}
	d, err := sleepFor(w.GetAnnotations())
	if err != nil {
		return a.decided(slowPath, req, w, admission.Allowed("").WithWarnings("crwatch: "+err.Error()))
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return a.decided(slowPath, req, w, admission.Allowed(""), "slept", d)
	case <-ctx.Done():
		return a.decided(slowPath, req, w, admission.Allowed(""), "slept", time.Since(start).Round(time.Millisecond), "cancelled", context.Cause(ctx))
	}
}

// sleepFor is the duration /slow sleeps for the given annotations: the
// value of sleepAnnotation, zero when it is absent, at most maxSleep.
func sleepFor(annotations map[string]string) (time.Duration, error) {
	v, ok := annotations[sleepAnnotation]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("ignoring annotation %s=%q: %w", sleepAnnotation, v, err)
	}
	return max(0, min(d, maxSleep)), nil
}

// decodeWidget decodes an admitted object, which must be a Widget of
// crwatch.skiff.io in any version.
func decodeWidget(raw []byte) (*unstructured.Unstructured, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the request has no object")
	}
	w := &unstructured.Unstructured{}
	if err := w.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("decoding the object: %w", err)
	}
	if gvk := w.GroupVersionKind(); gvk.Group != widgetGVK.Group || gvk.Kind != widgetGVK.Kind {
		return nil, fmt.Errorf("the object is a %s, not a %s of %s", gvk.GroupKind(), widgetGVK.Kind, widgetGVK.Group)
	}
	return w, nil
}

// decided logs the decision on req, the "webhook" line, and returns resp.
// w is the decoded object, nil when it could not be decoded.
func (a *admissionHooks) decided(path string, req admission.Request, w *unstructured.Unstructured, resp admission.Response, kv ...any) admission.Response {
	name := req.Name // empty on a CREATE with generateName
	if w != nil && w.GetName() != "" {
		name = w.GetName()
	}
	args := []any{"path", path, "name", name, "allowed", resp.Allowed, "namespace", req.Namespace, "operation", req.Operation}
	if r := resp.Result; r != nil && !resp.Allowed {
		args = append(args, "code", r.Code, "message", r.Message)
	}
	a.log.Info("webhook", append(args, kv...)...)
	return resp
}
