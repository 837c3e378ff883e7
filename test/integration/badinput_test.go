package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// raw sends one request with the admin credentials and returns the code
// and the decoded Status (if the body is one).
func raw(t *testing.T, c *framework.Cluster, method, path, contentType string, body []byte) (int, metav1.Status) {
	t.Helper()
	tr, err := rest.TransportFor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, c.Config.Host+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	_ = json.Unmarshal(b, &st)
	return resp.StatusCode, st
}

func TestBadInput(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	mustNamespace(t, c.Client, "bad")
	const cms = "/api/v1/namespaces/bad/configmaps"
	big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"` + strings.Repeat("a", 4<<20) + `"}}`
	// A billion laughs: nine aliases of nine aliases of ... nine strings.
	laughs := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\nl0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
	for i := 1; i < 10; i++ {
		p := fmt.Sprintf("*l%d", i-1)
		laughs += fmt.Sprintf("l%d: &l%d [%s]\n", i, i, strings.Repeat(p+",", 8)+p)
	}
	// One anchored 1 MiB string and 400 aliases of it: 400 MiB once expanded.
	expands := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: expands}\ndata:\n  k0: &s " + strings.Repeat("x", 1<<20) + "\n"
	for i := 1; i <= 400; i++ {
		expands += fmt.Sprintf("  k%d: *s\n", i)
	}
	deep := `{"data":` + strings.Repeat(`{"a":`, 9000) + "1" + strings.Repeat("}", 9000) + "}"
	manyContainers := `{"spec":{"containers":[` + strings.TrimSuffix(strings.Repeat(`{"name":"c"},`, 8000), ",") + `]}}`
	for _, tc := range []struct {
		name, method, path, ct, body string
		code                         int
		reason                       metav1.StatusReason
		msg                          string
	}{
		{"malformed json", "POST", cms, "application/json", `{"apiVersion":`, 400, metav1.StatusReasonBadRequest, ""},
		{"malformed yaml", "POST", cms, "application/yaml", "a: [b", 400, metav1.StatusReasonBadRequest, ""},
		{"wrong kind", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`, 400, metav1.StatusReasonBadRequest, "kind"},
		{"wrong version", "POST", cms, "application/json", `{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"s"}}`, 400, metav1.StatusReasonBadRequest, "apps/v1"},
		{"too large", "POST", cms, "application/json", big, 413, metav1.StatusReasonRequestEntityTooLarge, ""},
		{"invalid name", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}`, 422, metav1.StatusReasonInvalid, "metadata.name"},
		{"missing name", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}`, 422, metav1.StatusReasonInvalid, "name or generateName is required"},
		{"unknown field strict", "POST", cms + "?fieldValidation=Strict", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"bogus":1}`, 400, metav1.StatusReasonBadRequest, `unknown field "bogus"`},
		{"duplicate field strict", "POST", cms + "?fieldValidation=Strict", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"data":{},"data":{}}`, 400, metav1.StatusReasonBadRequest, "duplicate field"},
		{"bad fieldValidation", "POST", cms + "?fieldValidation=Maybe", "application/json", `{}`, 400, metav1.StatusReasonBadRequest, ""},
		{"unsupported media type", "POST", cms, "text/plain", `hello`, 415, metav1.StatusReasonUnsupportedMediaType, ""},
		{"namespace mismatch", "POST", cms, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n","namespace":"other"}}`, 400, metav1.StatusReasonBadRequest, "namespace"},
		{"bad label selector", "GET", cms + "?labelSelector=a%20in%20(", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"unknown resource", "GET", "/api/v1/namespaces/bad/widgets", "", "", 404, metav1.StatusReasonNotFound, ""},
		{"bad patch", "PATCH", cms + "/nope", "application/json-patch+json", `{"op":`, 400, metav1.StatusReasonBadRequest, ""},
		{"yaml alias bomb", "POST", cms, "application/yaml", laughs, 413, metav1.StatusReasonRequestEntityTooLarge, "aliases"},
		{"yaml alias bomb applied", "PATCH", cms + "/laughs?fieldManager=t", "application/apply-patch+yaml", laughs, 413, metav1.StatusReasonRequestEntityTooLarge, "aliases"},
		{"yaml alias expansion", "POST", cms, "application/yaml", expands, 413, metav1.StatusReasonRequestEntityTooLarge, "aliases"},
		{"yaml alias expansion applied", "PATCH", cms + "/expands?fieldManager=t", "application/apply-patch+yaml", expands, 413, metav1.StatusReasonRequestEntityTooLarge, "aliases"},
		{"deep merge patch", "PATCH", cms + "/nope", "application/merge-patch+json", deep, 413, metav1.StatusReasonRequestEntityTooLarge, "deeper than 100"},
		{"deep apply", "PATCH", cms + "/nope?fieldManager=t", "application/apply-patch+yaml", deep, 413, metav1.StatusReasonRequestEntityTooLarge, "deeper than 100"},
		{"long list in a strategic merge patch", "PATCH", cms + "/nope", "application/strategic-merge-patch+json", manyContainers, 413, metav1.StatusReasonRequestEntityTooLarge, "more than 2000 objects"},
		{"too many json patch operations", "PATCH", cms + "/nope", "application/json-patch+json", "[" + strings.TrimSuffix(strings.Repeat(`{"op":"test","path":"/a","value":1},`, 10001), ",") + "]", 413, metav1.StatusReasonRequestEntityTooLarge, "10000"},
		{"bad timeout", "GET", cms + "?timeout=soon", "", "", 400, metav1.StatusReasonBadRequest, "invalid timeout specified in the request URL"},
		{"bad dryRun", "POST", cms + "?dryRun=Sometimes", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"}}`, 400, metav1.StatusReasonBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, st := raw(t, c, tc.method, tc.path, tc.ct, []byte(tc.body))
			if code != tc.code || st.Reason != tc.reason || st.Kind != "Status" || int(st.Code) != tc.code {
				t.Fatalf("got %d %q (kind %q code %d) %q, want %d %q", code, st.Reason, st.Kind, st.Code, st.Message, tc.code, tc.reason)
			}
			if tc.msg != "" && !strings.Contains(st.Message, tc.msg) {
				t.Fatalf("message %q does not mention %q", st.Message, tc.msg)
			}
		})
	}
	l, err := c.Client.CoreV1().ConfigMaps("bad").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("bad input stored something: %v %v", err, l)
	}
}

func TestAuthentication(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for path, want := range map[string]int{"/readyz": 200, "/livez": 200, "/healthz": 200, "/version": 200,
		"/api/v1/namespaces": 401, "/apis": 401, "/metrics": 401} {
		resp, err := anon.Get(fmt.Sprintf("https://127.0.0.1:%d%s", c.Port, path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("anonymous GET %s = %d, want %d: %s", path, resp.StatusCode, want, body)
		}
	}
	code, _ := raw(t, c, "GET", "/readyz?verbose", "", nil)
	if code != 200 {
		t.Errorf("readyz?verbose = %d", code)
	}
	code, _ = raw(t, c, "GET", "/metrics", "", nil)
	if code != 200 {
		t.Errorf("metrics = %d", code)
	}
}
