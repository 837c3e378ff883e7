package integration

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/audit"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
- level: None
  users: ["quiet"]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
- level: Metadata
`

// With --audit-policy-file and --audit-log-path, the server writes
// upstream's audit events: who did what to which object, with which
// answer, at each stage; Secrets at Metadata (never their data),
// ConfigMaps with their bodies, and nothing for the None rules.
func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	logPath := filepath.Join(dir, "audit", "audit.log")
	tokens := filepath.Join(dir, "tokens.csv")
	for name, data := range map[string]string{policy: auditPolicy, tokens: "alice-token,alice,u-alice,\"staff\"\nquiet-token,quiet,u-quiet,\n"} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := framework.StartInProcess(t, framework.WithAuthorization(server.ModeRBAC), framework.WithTokenFile(tokens), func(cfg *server.Config) {
		cfg.AuditPolicyFile, cfg.AuditLogPath, cfg.AuditLogMaxSize, cfg.AuditLogMaxBackup = policy, logPath, 10, 2
	})
	ctx := ctxT(t)
	as := func(token string) kubernetes.Interface {
		cfg := rest.AnonymousClientConfig(c.Config)
		cfg.BearerToken = token
		return kubernetes.NewForConfigOrDie(cfg)
	}

	// The admin creates a Secret and a ConfigMap, and reads the ConfigMap.
	const secretValue = "s3cr3t-VALUE-never-logged"
	if _, err := c.Client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "audit-secret"},
		Data: map[string][]byte{"password": []byte(secretValue)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const cmValue = "configmap-body-is-logged"
	if _, err := c.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "audit-cm"},
		Data: map[string]string{"k": cmValue}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps("default").Get(ctx, "audit-cm", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// A watch: long-running.
	timeout := int64(1)
	wi, err := c.Client.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{TimeoutSeconds: &timeout, FieldSelector: "metadata.name=audit-cm"})
	if err != nil {
		t.Fatal(err)
	}
	for range wi.ResultChan() {
	}
	// alice may not read the Secret.
	if _, err := as("alice-token").CoreV1().Secrets("default").Get(ctx, "audit-secret", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("alice reading the secret: %v, want 403", err)
	}
	// The admin acts as carol.
	imp := rest.CopyConfig(c.Config)
	imp.Impersonate = rest.ImpersonationConfig{UserName: "carol", Groups: []string{"team-c"}}
	if _, err := kubernetes.NewForConfigOrDie(imp).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Not audited: quiet's requests, /healthz.
	if _, err := as("quiet-token").CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("quiet listing configmaps: %v, want 403", err)
	}
	if _, err := c.Client.Discovery().RESTClient().Get().AbsPath("/healthz").DoRaw(ctx); err != nil {
		t.Fatal(err)
	}
	// Failed authentication.
	if _, err := as("wrong-token").CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("a wrong token: %v, want 401", err)
	}
	// Every answer names its audit ID.
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(c.Config.Host + "/api/v1/namespaces/default/configmaps/audit-cm")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	auditID := resp.Header.Get("Audit-Id")
	if resp.StatusCode != http.StatusOK || auditID == "" {
		t.Fatalf("GET: %d, Audit-Id %q", resp.StatusCode, auditID)
	}

	// The log is complete once the server has stopped.
	if err := c.Stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var events []audit.Event
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v: %.300s", len(events)+1, err, sc.Text())
		}
		events = append(events, ev)
	}
	// find returns, by stage, the events of the request one of whose
	// events matches (a create's name is known only once its body is
	// read: its RequestReceived event has none).
	find := func(match func(ev *audit.Event) bool) map[audit.Stage]*audit.Event {
		var id types.UID
		for i := range events {
			if match(&events[i]) {
				if id != "" && events[i].AuditID != id {
					t.Errorf("two requests match: %+v", events[i])
				}
				id = events[i].AuditID
			}
		}
		out := map[audit.Stage]*audit.Event{}
		for i := range events {
			if id != "" && events[i].AuditID == id {
				if _, dup := out[events[i].Stage]; dup {
					t.Errorf("two %s events: %+v", events[i].Stage, events[i])
				}
				out[events[i].Stage] = &events[i]
			}
		}
		return out
	}
	stages := func(m map[audit.Stage]*audit.Event) []string {
		var s []string
		for st := range m {
			s = append(s, string(st))
		}
		slices.Sort(s)
		return s
	}
	ref := func(ev *audit.Event, resource, name, verb string) bool {
		return ev.ObjectRef != nil && ev.ObjectRef.Namespace == "default" && ev.ObjectRef.Resource == resource &&
			ev.ObjectRef.Name == name && ev.Verb == verb
	}
	wantStages := func(what string, m map[audit.Stage]*audit.Event, want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := stages(m); !slices.Equal(got, want) {
			t.Errorf("%s: stages %v, want %v", what, got, want)
		}
	}
	const admin = "system:admin"

	// The Secret's create: at Metadata, without its data.
	sec := find(func(ev *audit.Event) bool { return ref(ev, "secrets", "audit-secret", "create") })
	wantStages("secret create", sec, "RequestReceived", "ResponseComplete")
	if ev := sec[audit.StageResponseComplete]; ev != nil {
		if ev.Level != audit.LevelMetadata || ev.User.Username != admin || !slices.Contains(ev.User.Groups, "system:masters") ||
			ev.ResponseStatus == nil || ev.ResponseStatus.Code != 201 || ev.RequestObject != nil || ev.ResponseObject != nil ||
			ev.ObjectRef.APIVersion != "v1" || ev.Annotations[audit.AnnotationDecision] != "allow" {
			t.Errorf("secret create: %+v", ev)
		}
	}
	for _, leak := range []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue))} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the log has the secret's data %q", leak)
		}
	}

	// The ConfigMap's create and get: at RequestResponse, with the bodies.
	cm := find(func(ev *audit.Event) bool { return ref(ev, "configmaps", "audit-cm", "create") })
	wantStages("configmap create", cm, "RequestReceived", "ResponseComplete")
	if ev := cm[audit.StageResponseComplete]; ev != nil {
		if ev.Level != audit.LevelRequestResponse || ev.ResponseStatus.Code != 201 ||
			!strings.Contains(string(ev.RequestObject), cmValue) || !strings.Contains(string(ev.ResponseObject), cmValue) ||
			!strings.Contains(string(ev.ResponseObject), `"resourceVersion"`) {
			t.Errorf("configmap create: %+v\nrequest %s\nresponse %s", ev, ev.RequestObject, ev.ResponseObject)
		}
	}
	get := find(func(ev *audit.Event) bool {
		return ref(ev, "configmaps", "audit-cm", "get") && ev.AuditID != "" && string(ev.AuditID) != auditID
	})
	wantStages("configmap get", get, "RequestReceived", "ResponseComplete")
	if ev := get[audit.StageResponseComplete]; ev != nil {
		if ev.ResponseStatus.Code != 200 || ev.User.Username != admin || !strings.Contains(string(ev.ResponseObject), cmValue) || ev.RequestObject != nil {
			t.Errorf("configmap get: %+v", ev)
		}
	}
	byID := find(func(ev *audit.Event) bool { return string(ev.AuditID) == auditID })
	wantStages("the GET by its Audit-Id", byID, "RequestReceived", "ResponseComplete")

	// The watch: its status line is a stage of its own.
	watch := find(func(ev *audit.Event) bool {
		return ev.Verb == "watch" && strings.Contains(ev.RequestURI, "metadata.name%3Daudit-cm")
	})
	wantStages("watch", watch, "RequestReceived", "ResponseStarted", "ResponseComplete")
	if ev := watch[audit.StageResponseStarted]; ev != nil && (ev.ResponseStatus.Code != 200 || ev.ObjectRef.Resource != "configmaps") {
		t.Errorf("watch: %+v", ev)
	}

	// alice's refused read.
	denied := find(func(ev *audit.Event) bool {
		return ref(ev, "secrets", "audit-secret", "get") && ev.User.Username == "alice"
	})
	wantStages("alice's get", denied, "RequestReceived", "ResponseComplete")
	if ev := denied[audit.StageResponseComplete]; ev != nil {
		if ev.ResponseStatus.Code != 403 || ev.ResponseStatus.Reason != metav1.StatusReasonForbidden ||
			ev.Annotations[audit.AnnotationDecision] != "forbid" || ev.User.UID != "u-alice" {
			t.Errorf("alice's get: %+v %+v", ev, ev.ResponseStatus)
		}
	}

	// The impersonated request: the admin's, acting as carol.
	imps := find(func(ev *audit.Event) bool {
		return ev.ObjectRef != nil && ev.ObjectRef.Resource == "selfsubjectreviews" && ev.ImpersonatedUser != nil
	})
	wantStages("impersonated", imps, "RequestReceived", "ResponseComplete")
	if ev := imps[audit.StageRequestReceived]; ev != nil && (ev.User.Username != admin || ev.ImpersonatedUser != nil) {
		t.Errorf("impersonated, RequestReceived (before impersonation, as upstream's): %+v", ev)
	}
	if ev := imps[audit.StageResponseComplete]; ev != nil {
		if ev.User.Username != admin || ev.ImpersonatedUser.Username != "carol" || !slices.Contains(ev.ImpersonatedUser.Groups, "team-c") ||
			ev.ResponseStatus.Code != 201 || ev.ObjectRef.APIGroup != "authentication.k8s.io" {
			t.Errorf("impersonated: %+v %+v", ev, ev.ImpersonatedUser)
		}
	}

	// The failed authentication.
	unauth := find(func(ev *audit.Event) bool { return ev.ResponseStatus != nil && ev.ResponseStatus.Code == 401 })
	wantStages("unauthenticated", unauth, "ResponseStarted")
	if ev := unauth[audit.StageResponseStarted]; ev != nil && (ev.User.Username != "" || ev.Verb != "list" || ev.ObjectRef.Resource != "namespaces") {
		t.Errorf("unauthenticated: %+v", ev)
	}

	// The None rules left nothing.
	for _, ev := range events {
		if ev.User.Username == "quiet" || strings.HasPrefix(ev.RequestURI, "/healthz") || strings.HasPrefix(ev.RequestURI, "/readyz") {
			t.Errorf("audited despite a None rule: %s %s by %s", ev.Verb, ev.RequestURI, ev.User.Username)
		}
	}
}

// An invalid policy stops the start with a clear message.
func TestAuditPolicyInvalid(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := server.Defaults()
	cfg.DataDir, cfg.HTTPSPort, cfg.DisableAgent = dir, framework.FreePort(t), true
	cfg.AuditPolicyFile, cfg.AuditLogPath = policy, filepath.Join(dir, "audit.log")
	err := server.Run(ctxT(t), cfg)
	if err == nil || !strings.Contains(err.Error(), `--audit-policy-file`) || !strings.Contains(err.Error(), `unknown level "Everything"`) {
		t.Fatalf("got %v, want the policy's fault", err)
	}
}
