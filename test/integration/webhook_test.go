package integration

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	runtimeschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// reviewer answers AdmissionReviews on its paths, over TLS, as a webhook
// server does: each path's func decides on one request.
type reviewer struct {
	srv      *httptest.Server
	caBundle []byte

	mu    sync.Mutex
	calls map[string]int
}

func newReviewer(t testing.TB, paths map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) *reviewer {
	rv := &reviewer{calls: map[string]int{}}
	mux := http.NewServeMux()
	for path, decide := range paths {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var review admissionv1.AdmissionReview
			if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
				http.Error(w, "bad review", http.StatusBadRequest)
				return
			}
			rv.mu.Lock()
			rv.calls[path]++
			rv.mu.Unlock()
			resp := decide(review.Request)
			resp.UID = review.Request.UID
			review.Response, review.Request = resp, nil
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(&review)
		})
	}
	rv.srv = httptest.NewUnstartedServer(mux)
	rv.srv.StartTLS()
	t.Cleanup(rv.srv.Close)
	rv.caBundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rv.srv.Certificate().Raw})
	return rv
}

func (rv *reviewer) called(path string) int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.calls[path]
}

// clientConfig points a webhook at path of rv, by URL.
func (rv *reviewer) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{URL: ptr.To(rv.srv.URL + path), CABundle: rv.caBundle}
}

func allow(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true}
}

// configMapRules match the creates and updates of ConfigMaps.
var configMapRules = []admissionregistrationv1.RuleWithOperations{{
	Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
	Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
}}

// webhookSelector lets the webhooks of a test see only its objects.
func webhookSelector(value string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"webhook": value}}
}

func labelled(name, value string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"webhook": value}}, Data: data}
}

// waitAdmits creates probe objects until the configuration just written
// is in effect (the server reads it through an informer), using check.
func waitAdmits(t testing.TB, what string, check func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return check(), nil
	})
	if err != nil {
		t.Fatalf("%s: not in effect after 10s", what)
	}
}

func TestAdmissionWebhooks(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = warnings
	cs := kubernetes.NewForConfigOrDie(cfg)
	cms := cs.CoreV1().ConfigMaps("default")
	regs := cs.AdmissionregistrationV1()

	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	rv := newReviewer(t, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		// /mutate adds an annotation naming the operation, and warns.
		"/mutate": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var cm corev1.ConfigMap
			if err := json.Unmarshal(req.Object.Raw, &cm); err != nil {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: err.Error()}}
			}
			patch := `[{"op":"add","path":"/metadata/annotations","value":{"mutated":"` + string(req.Operation) + `"}}]`
			if cm.Annotations != nil {
				patch = `[{"op":"add","path":"/metadata/annotations/mutated","value":"` + string(req.Operation) + `"}]`
			}
			pt := admissionv1.PatchTypeJSONPatch
			return &admissionv1.AdmissionResponse{Allowed: true, Patch: []byte(patch), PatchType: &pt, Warnings: []string{"mutated by the test"}}
		},
		// /validate refuses a ConfigMap with the key "deny", and one
		// that the mutating webhook has not annotated.
		"/validate": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var cm corev1.ConfigMap
			_ = json.Unmarshal(req.Object.Raw, &cm)
			if _, ok := cm.Data["deny"]; ok {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusUnprocessableEntity, Message: "the key deny is refused"}}
			}
			if cm.Annotations["mutated"] == "" {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "not mutated first"}}
			}
			return allow(req)
		},
		"/slow": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			select {
			case <-time.After(5 * time.Second):
			case <-slow:
			}
			return allow(req)
		},
		"/allow": allow,
		// /capscale caps a Scale's replicas at 2.
		"/capscale": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var sc autoscalingv1.Scale
			if err := json.Unmarshal(req.Object.Raw, &sc); err != nil || req.Kind.Kind != "Scale" || req.SubResource != "scale" {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: fmt.Sprintf("unexpected review: %s/%s %v", req.Kind, req.SubResource, err)}}
			}
			if sc.Spec.Replicas <= 2 {
				return allow(req)
			}
			pt := admissionv1.PatchTypeJSONPatch
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: []byte(`[{"op":"replace","path":"/spec/replicas","value":2}]`)}
		},
		// /noexec refuses an exec of rm.
		"/noexec": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var opts corev1.PodExecOptions
			if err := json.Unmarshal(req.Object.Raw, &opts); err != nil || req.Kind.Kind != "PodExecOptions" || req.Operation != admissionv1.Connect {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: fmt.Sprintf("unexpected review: %s %s %v", req.Operation, req.Kind, err)}}
			}
			if slices.Contains(opts.Command, "rm") {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusForbidden, Message: "no rm in " + opts.Container}}
			}
			return allow(req)
		},
	})

	none := admissionregistrationv1.SideEffectClassNone
	fail, ignore := admissionregistrationv1.Fail, admissionregistrationv1.Ignore
	_, err := regs.MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "mutate"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "mutate.skiff.test", ClientConfig: rv.clientConfig("/mutate"), Rules: configMapRules,
			ObjectSelector: webhookSelector("on"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the mutating configuration: %v", err)
	}
	_, err = regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "validate"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate.skiff.test", ClientConfig: rv.clientConfig("/validate"), Rules: configMapRules,
			ObjectSelector: webhookSelector("on"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the validating configuration: %v", err)
	}
	got, err := regs.ValidatingWebhookConfigurations().Get(ctx, "validate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := got.Webhooks[0]; *h.FailurePolicy != fail || *h.MatchPolicy != admissionregistrationv1.Equivalent || *h.TimeoutSeconds != 10 || h.NamespaceSelector == nil {
		t.Errorf("defaults: failurePolicy %v matchPolicy %v timeoutSeconds %v namespaceSelector %v", *h.FailurePolicy, *h.MatchPolicy, *h.TimeoutSeconds, h.NamespaceSelector)
	}
	n := 0
	waitAdmits(t, "the webhooks", func() bool {
		n++
		cm, err := cms.Create(ctx, labelled(fmt.Sprintf("probe-%d", n), "on", nil), metav1.CreateOptions{})
		return err == nil && cm.Annotations["mutated"] == "CREATE"
	})

	t.Run("mutating then validating", func(t *testing.T) {
		warnings.msgs = nil
		cm, err := cms.Create(ctx, labelled("a", "on", map[string]string{"k": "v"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if cm.Annotations["mutated"] != "CREATE" {
			t.Errorf("annotations after create = %v, want the webhook's", cm.Annotations)
		}
		if !slices.Contains(warnings.msgs, "mutated by the test") {
			t.Errorf("warnings = %q, want the webhook's", warnings.msgs)
		}
		cm.Data["k"] = "w"
		cm.Annotations = map[string]string{"other": "x"}
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update: %v", err)
		}
		if cm.Annotations["mutated"] != "UPDATE" || cm.Annotations["other"] != "x" {
			t.Errorf("annotations after update = %v", cm.Annotations)
		}
		// Not selected: no webhook sees it.
		plain, err := cms.Create(ctx, labelled("b", "off", map[string]string{"deny": "1"}), metav1.CreateOptions{})
		if err != nil || plain.Annotations["mutated"] != "" {
			t.Errorf("an object the selectors leave out: %v, annotations %v", err, plain.Annotations)
		}
	})

	t.Run("a denial in the webhook's words", func(t *testing.T) {
		_, err := cms.Create(ctx, labelled("denied", "on", map[string]string{"deny": "1"}), metav1.CreateOptions{})
		want := `admission webhook "validate.skiff.test" denied the request: the key deny is refused`
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("create = %v, want 422 with %q", err, want)
		}
		if _, err := cms.Get(ctx, "denied", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the denied object was stored: %v", err)
		}
		// A dry run is admitted as a real write is.
		_, err = cms.Create(ctx, labelled("denied", "on", map[string]string{"deny": "1"}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsInvalid(err) {
			t.Errorf("dry-run create = %v, want the same denial", err)
		}
	})

	t.Run("matchConditions", func(t *testing.T) {
		before := rv.called("/allow")
		_, err := regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "conditions"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "conditions.skiff.test", ClientConfig: rv.clientConfig("/allow"), Rules: configMapRules,
				ObjectSelector: webhookSelector("cond"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "has-x", Expression: `has(object.data) && "x" in object.data`}},
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		waitAdmits(t, "the matchConditions webhook", func() bool {
			i++
			_, err := cms.Create(ctx, labelled(fmt.Sprintf("cond-%d", i), "cond", map[string]string{"x": "1"}), metav1.CreateOptions{})
			return err == nil && rv.called("/allow") > before
		})
		calls := rv.called("/allow")
		if _, err := cms.Create(ctx, labelled("cond-no", "cond", map[string]string{"y": "1"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if rv.called("/allow") != calls {
			t.Error("the webhook was called for an object its matchConditions exclude")
		}
	})

	t.Run("failurePolicy when the webhook is down", func(t *testing.T) {
		down := admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/down"), CABundle: rv.caBundle}
		for _, tc := range []struct {
			label  string
			policy admissionregistrationv1.FailurePolicyType
		}{{"down-fail", fail}, {"down-ignore", ignore}} {
			_, err := regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: tc.label},
				Webhooks: []admissionregistrationv1.ValidatingWebhook{{
					Name: tc.label + ".skiff.test", ClientConfig: down, Rules: configMapRules, FailurePolicy: ptr.To(tc.policy),
					ObjectSelector: webhookSelector(tc.label), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
		i := 0
		waitAdmits(t, "the Fail webhook", func() bool {
			i++
			_, err := cms.Create(ctx, labelled(fmt.Sprintf("fail-%d", i), "down-fail", nil), metav1.CreateOptions{})
			return err != nil
		})
		_, err := cms.Create(ctx, labelled("fail", "down-fail", nil), metav1.CreateOptions{})
		want := `failed calling webhook "down-fail.skiff.test": failed to call webhook: Post "https://127.0.0.1:1/down?timeout=10s"`
		if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("create under Fail = %v, want 500 with %q", err, want)
		}
		if _, err := cms.Create(ctx, labelled("ignored", "down-ignore", nil), metav1.CreateOptions{}); err != nil {
			t.Errorf("create under Ignore = %v, want it admitted", err)
		}
	})

	t.Run("timeoutSeconds", func(t *testing.T) {
		for _, tc := range []struct {
			label  string
			policy admissionregistrationv1.FailurePolicyType
		}{{"slow-fail", fail}, {"slow-ignore", ignore}} {
			_, err := regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: tc.label},
				Webhooks: []admissionregistrationv1.ValidatingWebhook{{
					Name: tc.label + ".skiff.test", ClientConfig: rv.clientConfig("/slow"), Rules: configMapRules, FailurePolicy: ptr.To(tc.policy),
					TimeoutSeconds: ptr.To[int32](1), ObjectSelector: webhookSelector(tc.label), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
		before := rv.called("/slow")
		i := 0
		waitAdmits(t, "the slow webhook", func() bool {
			i++
			_, _ = cms.Create(ctx, labelled(fmt.Sprintf("slowprobe-%d", i), "slow-ignore", nil), metav1.CreateOptions{})
			return rv.called("/slow") > before
		})
		began := time.Now()
		_, err := cms.Create(ctx, labelled("slow", "slow-fail", nil), metav1.CreateOptions{})
		took := time.Since(began)
		if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "context deadline exceeded") {
			t.Errorf("create past the timeout under Fail = %v, want 500 with context deadline exceeded", err)
		}
		if took > 3*time.Second {
			t.Errorf("the create took %v: timeoutSeconds 1 not honoured", took)
		}
		began = time.Now()
		if _, err := cms.Create(ctx, labelled("slow-ok", "slow-ignore", nil), metav1.CreateOptions{}); err != nil {
			t.Errorf("create past the timeout under Ignore = %v, want it admitted", err)
		}
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("the create under Ignore took %v", took)
		}
	})

	t.Run("a scale write is a Scale", func(t *testing.T) {
		_, err := regs.MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "capscale"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name: "capscale.skiff.test", ClientConfig: rv.clientConfig("/capscale"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments/scale"}},
				}},
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{"app": "scaled"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "scaled"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
		}
		if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitAdmits(t, "the scale webhook", func() bool {
			sc, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "scaled",
				&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "scaled"}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}, metav1.UpdateOptions{})
			return err == nil && sc.Spec.Replicas == 2
		})
		got, err := cs.AppsV1().Deployments("default").Get(ctx, "scaled", metav1.GetOptions{})
		if err != nil || *got.Spec.Replicas != 2 {
			t.Errorf("replicas after a scale to 5 under the webhook = %v (%v), want 2", got.Spec.Replicas, err)
		}
		// A plain update of the Deployment is not a scale write. The
		// deployment controller writes the object too: read again on a
		// conflict.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := cs.AppsV1().Deployments("default").Get(ctx, "scaled", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Spec.Replicas = ptr.To[int32](4)
			got, err = cs.AppsV1().Deployments("default").Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil || *got.Spec.Replicas != 4 {
			t.Errorf("an update to 4 replicas = %v, %v", got.Spec.Replicas, err)
		}
	})

	t.Run("exec is a CONNECT", func(t *testing.T) {
		_, err := regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "noexec"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "noexec.skiff.test", ClientConfig: rv.clientConfig("/noexec"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Connect},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/exec"}},
				}},
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sh"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		exec := func(command string) error {
			return cs.CoreV1().RESTClient().Post().Namespace("default").Resource("pods").Name("sh").SubResource("exec").
				Param("command", command).Param("stdout", "true").Do(ctx).Error()
		}
		waitAdmits(t, "the exec webhook", func() bool {
			return apierrors.IsForbidden(exec("rm"))
		})
		if err := exec("rm"); !strings.Contains(fmt.Sprint(err), `admission webhook "noexec.skiff.test" denied the request: no rm in c`) {
			t.Errorf("exec rm = %v, want the webhook's denial", err)
		}
		// Admitted, it goes on to find the pod has no node yet.
		if err := exec("ls"); !apierrors.IsBadRequest(err) || strings.Contains(err.Error(), "admission webhook") {
			t.Errorf("exec ls = %v, want past admission (400: no node yet)", err)
		}
	})

	t.Run("upstream's admission metrics", func(t *testing.T) {
		raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`apiserver_admission_webhook_admission_duration_seconds_count{name="mutate.skiff.test",operation="CREATE",rejected="false",type="admit"}`,
			`apiserver_admission_webhook_rejection_count{error_type="calling_webhook_error",name="down-fail.skiff.test",operation="CREATE",rejection_code="503",type="validating"}`,
			`apiserver_admission_webhook_rejection_count{error_type="no_error",name="validate.skiff.test",operation="CREATE",rejection_code="422",type="validating"}`,
			`apiserver_admission_webhook_fail_open_count{name="down-ignore.skiff.test",type="validating"}`,
		} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("deletes", func(t *testing.T) {
		_, err := regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "nodelete"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "nodelete.skiff.test", ClientConfig: rv.clientConfig("/validate"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
				ObjectSelector: webhookSelector("keep"),
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				}},
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The old object is what a delete's webhook sees: this one has
		// no annotation, so /validate refuses it.
		i := 0
		waitAdmits(t, "the delete webhook", func() bool {
			i++
			name := fmt.Sprintf("keep-%d", i)
			if _, err := cms.Create(ctx, labelled(name, "keep", nil), metav1.CreateOptions{}); err != nil {
				return false
			}
			err := cms.Delete(ctx, name, metav1.DeleteOptions{})
			// A denial without a code is a 400, as upstream's.
			return apierrors.IsBadRequest(err) && strings.Contains(err.Error(), "not mutated first")
		})
	})
}

func TestValidatingAdmissionPolicy(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	regs := c.Client.AdmissionregistrationV1()
	_, err := regs.ValidatingAdmissionPolicies().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "max-replicas"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 3"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create policy: %v", err)
	}
	_, err = regs.ValidatingAdmissionPolicyBindings().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "max-replicas-binding"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "max-replicas", ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create binding: %v", err)
	}
	deploy := func(name string, replicas int32) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				},
			},
		}
	}
	deployments := c.Client.AppsV1().Deployments("default")
	var last error
	i := 0
	waitAdmits(t, "the policy", func() bool {
		i++
		_, last = deployments.Create(ctx, deploy(fmt.Sprintf("big-%d", i), 5), metav1.CreateOptions{})
		return last != nil
	})
	want := fmt.Sprintf(`deployments.apps "big-%d" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 3`, i)
	if !apierrors.IsInvalid(last) || last.Error() != want {
		t.Errorf("create of 5 replicas = %v, want 422 %q", last, want)
	}
	d, err := deployments.Create(ctx, deploy("small", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create of 3 replicas: %v", err)
	}
	// The deployment controller writes the new object's status at once:
	// an update from the created copy may meet a conflict first.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if d, err = deployments.Get(ctx, "small", metav1.GetOptions{}); err != nil {
			return err
		}
		d.Spec.Replicas = ptr.To[int32](4)
		_, err := deployments.Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if !apierrors.IsInvalid(err) {
		t.Errorf("update to 4 replicas = %v, want the policy's denial", err)
	}

	// The status controller type-checks the expressions against the
	// Deployment's schema: a misspelt field is a warning.
	p, err := regs.ValidatingAdmissionPolicies().Get(ctx, "max-replicas", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Validations = append(p.Spec.Validations, admissionregistrationv1.Validation{Expression: "object.spec.replica > 0"})
	if _, err := regs.ValidatingAdmissionPolicies().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var warnings []admissionregistrationv1.ExpressionWarning
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		p, err := regs.ValidatingAdmissionPolicies().Get(ctx, "max-replicas", metav1.GetOptions{})
		if err != nil || p.Status.ObservedGeneration != p.Generation || p.Status.TypeChecking == nil {
			return false, nil
		}
		warnings = p.Status.TypeChecking.ExpressionWarnings
		return true, nil
	})
	if err != nil {
		t.Fatalf("the policy's status does not speak of its generation: %v", err)
	}
	if len(warnings) != 1 || warnings[0].FieldRef != "spec.validations[1].expression" || !strings.Contains(warnings[0].Warning, "undefined field 'replica'") {
		t.Errorf("type checking = %+v, want one warning on spec.validations[1].expression about 'replica'", warnings)
	}
}

// BenchmarkWebhookCreate measures what a webhook adds to a create: the
// latency of ConfigMap creates with one mutating and one validating
// webhook that match them (sub-benchmark "webhooks"), against the same
// creates that no webhook matches ("none").
func BenchmarkWebhookCreate(b *testing.B) {
	c := framework.StartInProcess(b)
	ctx := context.Background()
	rv := newReviewer(b, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/mutate": func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			pt := admissionv1.PatchTypeJSONPatch
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: []byte(`[{"op":"add","path":"/data/mutated","value":"yes"}]`)}
		},
		"/validate": allow,
	})
	none := admissionregistrationv1.SideEffectClassNone
	regs := c.Client.AdmissionregistrationV1()
	if _, err := regs.MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "mutate.bench.test", ClientConfig: rv.clientConfig("/mutate"), Rules: configMapRules,
			ObjectSelector: webhookSelector("on"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := regs.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "validate.bench.test", ClientConfig: rv.clientConfig("/validate"), Rules: configMapRules,
			ObjectSelector: webhookSelector("on"), SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	cms := kubernetes.NewForConfigOrDie(unthrottled(c.Config)).CoreV1().ConfigMaps("default")
	n := 0
	waitAdmits(b, "the webhooks", func() bool {
		n++
		cm, err := cms.Create(ctx, labelled(fmt.Sprintf("probe-%d", n), "on", map[string]string{"k": "v"}), metav1.CreateOptions{})
		return err == nil && cm.Data["mutated"] == "yes"
	})
	for _, tc := range []struct{ name, label string }{{"none", "off"}, {"webhooks", "on"}} {
		b.Run(tc.name, func(b *testing.B) {
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				began := time.Now()
				if _, err := cms.Create(ctx, labelled(fmt.Sprintf("%s-%d-%d", tc.name, b.N, i), tc.label, map[string]string{"k": "v"}), metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(began))
			}
			b.StopTimer()
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// TestConversionWebhook serves a definition whose two versions name one
// field differently (v1 spec.size, v2 spec.count), converted by a webhook.
func TestConversionWebhook(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	var mu sync.Mutex
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/convert", func(w http.ResponseWriter, r *http.Request) {
		var review apiextensionsv1.ConversionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		mu.Lock()
		calls++
		mu.Unlock()
		resp := &apiextensionsv1.ConversionResponse{UID: review.Request.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
		for _, raw := range review.Request.Objects {
			var obj map[string]any
			if err := json.Unmarshal(raw.Raw, &obj); err != nil {
				resp.Result = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
				break
			}
			spec, _ := obj["spec"].(map[string]any)
			if spec != nil {
				from, to := "size", "count"
				if review.Request.DesiredAPIVersion == "example.com/v1" {
					from, to = to, from
				}
				if v, ok := spec[from]; ok {
					spec[to] = v
					delete(spec, from)
				}
			}
			obj["apiVersion"] = review.Request.DesiredAPIVersion
			out, _ := json.Marshal(obj)
			resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: out})
		}
		review.Response, review.Request = resp, nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	schemaOf := func(field string) *apiextensionsv1.CustomResourceValidation {
		return &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{field: {Type: "integer"}}},
			},
		}}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: schemaOf("size")},
				{Name: "v2", Served: true, Schema: schemaOf("count")},
			},
			Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ConversionReviewVersions: []string{"v1"},
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: ptr.To(srv.URL + "/convert"), CABundle: caBundle},
				},
			},
		},
	}
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	establish(t, ext, crd)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	v1 := dyn.Resource(runtimeschema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"}).Namespace("default")
	v2 := dyn.Resource(runtimeschema.GroupVersionResource{Group: "example.com", Version: "v2", Resource: "gadgets"}).Namespace("default")

	created := createServed(t, v2, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v2", "kind": "Gadget",
		"metadata": map[string]any{"name": "g"}, "spec": map[string]any{"count": int64(3)},
	}})
	if n, _, _ := unstructured.NestedInt64(created.Object, "spec", "count"); n != 3 || created.GetAPIVersion() != "example.com/v2" {
		t.Errorf("created = %v", created.Object)
	}
	got, err := v1.Get(ctx, "g", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get as v1: %v", err)
	}
	if n, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); n != 3 {
		t.Errorf("as v1: %v, want spec.size 3", got.Object)
	}
	// Changed through v1, read through v2.
	_ = unstructured.SetNestedField(got.Object, int64(5), "spec", "size")
	if _, err := v1.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update as v1: %v", err)
	}
	list, err := v2.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list as v2: %v %v", list, err)
	}
	if n, _, _ := unstructured.NestedInt64(list.Items[0].Object, "spec", "count"); n != 5 || list.Items[0].GetUID() != created.GetUID() {
		t.Errorf("as v2 after the update: %v", list.Items[0].Object)
	}
	mu.Lock()
	n := calls
	mu.Unlock()
	if n == 0 {
		t.Error("the conversion webhook was never called")
	}
	raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `apiserver_crd_conversion_webhook_duration_seconds_count{crd_name="gadgets.example.com"`; !strings.Contains(string(raw), want) {
		t.Errorf("/metrics lacks upstream's conversion webhook metric %s", want)
	}
	// A webhook that is down fails the read, in upstream's words.
	srv.Close()
	_, err = v2.Get(ctx, "g", metav1.GetOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "conversion webhook for example.com/v1, Kind=Gadget failed") {
		t.Errorf("get through a webhook that is down = %v", err)
	}
}
