package audit

import (
	"io"
	"net/http/httptest"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkMetadataEvent is the audit work of one request at the
// Metadata level: the event built and encoded at RequestReceived and at
// ResponseComplete.
func BenchmarkMetadataEvent(b *testing.B) {
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/web-0", nil)
	r.RemoteAddr = "10.0.0.2:40000"
	r.Header.Set("User-Agent", "kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef")
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		ev := NewEvent(r, "0f8b6bd2-3ad1-4b4c-9c8c-2d4a1b9c3e11", LevelMetadata, metav1.NowMicro())
		ev.Verb = "get"
		ev.User = authnv1.UserInfo{Username: "system:serviceaccount:default:web", UID: "5f1e", Groups: groups}
		ev.ObjectRef = &ObjectReference{Resource: "pods", Namespace: "default", Name: "web-0", APIVersion: "v1"}
		ev.Stage, ev.StageTimestamp = StageRequestReceived, ev.RequestReceivedTimestamp
		var err error
		if buf, err = Encode(buf[:0], ev); err != nil {
			b.Fatal(err)
		}
		ev.Stage, ev.StageTimestamp = StageResponseComplete, metav1.NowMicro()
		ev.ResponseStatus = &metav1.Status{Code: 200}
		ev.Annotations = map[string]string{AnnotationDecision: DecisionAllow,
			AnnotationReason: `RBAC: allowed by RoleBinding "web/default" of Role "pod-reader" to ServiceAccount "web/default"`}
		if buf, err = Encode(buf[:0], ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/event")
}

// BenchmarkLogBackend is ProcessEvent (encode and queue) with the writer
// behind it, writing to io.Discard.
func BenchmarkLogBackend(b *testing.B) {
	lb, err := newLogBackend(io.Discard, nil, LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer lb.Close()
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/web-0", nil)
	ev := NewEvent(r, "0f8b6bd2-3ad1-4b4c-9c8c-2d4a1b9c3e11", LevelMetadata, metav1.NowMicro())
	ev.User = authnv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}}
	ev.ObjectRef = &ObjectReference{Resource: "pods", Namespace: "default", Name: "web-0", APIVersion: "v1"}
	ev.ResponseStatus = &metav1.Status{Code: 200}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lb.ProcessEvent(ev)
		}
	})
}

func BenchmarkEvaluate(b *testing.B) {
	p, _, err := ParsePolicy([]byte(`apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources: [{group: "", resources: ["endpoints", "services"]}]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: None
  userGroups: ["system:nodes"]
  verbs: ["get"]
  resources: [{group: "", resources: ["nodes", "nodes/status"]}]
- level: Metadata
  resources: [{group: "", resources: ["secrets", "configmaps"]}, {group: "authentication.k8s.io", resources: ["tokenreviews"]}]
- level: Request
  verbs: ["get", "list", "watch"]
  resources: [{group: ""}, {group: "apps"}, {group: "batch"}]
- level: RequestResponse
`))
	if err != nil {
		b.Fatal(err)
	}
	a := &Attributes{User: "alice", Groups: []string{"dev", "system:authenticated"}, Authenticated: true, Verb: "create",
		ResourceRequest: true, APIGroup: "apps", Namespace: "default", Resource: "deployments", Name: "web"}
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(a)
	}
}
