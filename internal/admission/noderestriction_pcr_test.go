package admission

import (
	"context"
	"errors"
	"reflect"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// anyObjects is a storage.Interface that gets objects of any type by key.
type anyObjects struct {
	storage.Interface
	byKey map[string]runtime.Object
}

func (o anyObjects) Get(_ context.Context, key, _ string, out runtime.Object) error {
	obj, ok := o.byKey[key]
	if !ok {
		return storage.ErrNotFound
	}
	reflect.ValueOf(out).Elem().Set(reflect.ValueOf(obj.DeepCopyObject()).Elem())
	return nil
}

func TestNodeRestrictionPodCertificateRequests(t *testing.T) {
	pcrs := &registry.Resource{GroupVersion: certificatesv1.SchemeGroupVersion, Name: "podcertificaterequests", Namespaced: true}
	const signer = "example.com/spiffe"
	pod := func(name, node string, signers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: types.UID("uid-" + name)},
			Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "runner"}}
		for _, s := range signers {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{PodCertificate: &corev1.PodCertificateProjection{SignerName: s}}}}}})
		}
		return p
	}
	mirror := pod("static", "a", signer)
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	grants := &signerGrants{}
	p := &NodeRestriction{
		Pods: anyObjects{byKey: map[string]runtime.Object{
			"team/mine": pod("mine", "a", signer), "team/theirs": pod("theirs", "b", signer), "team/plain": pod("plain", "a"),
			"team/static": mirror,
		}},
		PodKey:     func(ns, name string) string { return ns + "/" + name },
		Nodes:      anyObjects{byKey: map[string]runtime.Object{"a": &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "uid-a"}}}},
		NodeKey:    func(name string) string { return name },
		Accounts:   anyObjects{byKey: map[string]runtime.Object{"team/runner": &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "runner", UID: "uid-runner"}}}},
		AccountKey: func(ns, name string) string { return ns + "/" + name },
		Authorizer: grants,
	}
	request := func(mut func(s *certificatesv1.PodCertificateRequestSpec)) *certificatesv1.PodCertificateRequest {
		r := &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "req-1"},
			Spec: certificatesv1.PodCertificateRequestSpec{SignerName: signer, PodName: "mine", PodUID: "uid-mine",
				ServiceAccountName: "runner", ServiceAccountUID: "uid-runner", NodeName: "a", NodeUID: "uid-a"}}
		if mut != nil {
			mut(&r.Spec)
		}
		return r
	}
	const forbidden = `podcertificaterequests.certificates.k8s.io "req-1" is forbidden: `
	cases := []struct {
		name string
		req  apiserver.AdmissionRequest
		// want is the error, "" when admitted; retry marks the errors
		// that are not 403 (the cache may lag; the kubelet retries).
		want  string
		retry bool
	}{
		{"own pod", apiserver.AdmissionRequest{Obj: request(nil)}, "", false},
		{"another node's name", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.NodeName = "b" })},
			forbidden + `PodCertificateRequest.Spec.NodeName="b", which is not the requesting node "a"`, false},
		{"stale node uid", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.NodeUID = "old" })},
			`PodCertificateRequest for pod "team/mine" names node UID "old", inconsistent with the running node ("uid-a")`, true},
		{"another node's pod", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) {
			s.PodName, s.PodUID = "theirs", "uid-theirs"
		})}, forbidden + `pod "team/theirs" is not running on node "a" named in the PodCertificateRequest`, false},
		{"no such pod", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.PodName = "gone" })},
			`while retrieving pod "team/gone" named in the PodCertificateRequest: not found`, true},
		{"stale pod uid", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.PodUID = "old" })},
			`PodCertificateRequest for pod "team/mine" contains pod UID ("old") which differs from running pod "uid-mine"`, true},
		{"mirror pod", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) {
			s.PodName, s.PodUID = "static", "uid-static"
		})}, forbidden + `pod "team/static" is a mirror pod`, false},
		{"another account", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.ServiceAccountName = "admin" })},
			forbidden + `PodCertificateRequest for pod "team/mine" contains serviceAccountName ("admin") that differs from running pod ("runner")`, false},
		{"stale account uid", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.ServiceAccountUID = "old" })},
			`PodCertificateRequest for pod "team/mine" names service account UID "old", which differs from the running service account ("uid-runner")`, true},
		{"a signer the pod does not mount", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.SignerName = "example.com/other" })},
			forbidden + `pod "team/mine" does not mount a podCertificate projected volume for signer "example.com/other"`, false},
		{"a pod without podCertificate volumes", apiserver.AdmissionRequest{Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) {
			s.PodName, s.PodUID = "plain", "uid-plain"
		})}, forbidden + `pod "team/plain" does not mount a podCertificate projected volume for signer "example.com/spiffe"`, false},
		{"update", apiserver.AdmissionRequest{Operation: apiserver.Update, Name: "req-1", Obj: request(nil), Old: request(nil)},
			forbidden + `unexpected operation UPDATE`, false},
		{"status", apiserver.AdmissionRequest{Operation: apiserver.Update, Sub: "status", Name: "req-1", Obj: request(nil), Old: request(nil)},
			forbidden + `unexpected operation UPDATE`, false},
	}
	a := &apiserver.User{Name: "system:node:a", Groups: []string{"system:nodes", "system:authenticated"}}
	ctx := apiserver.WithUser(context.Background(), a)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			req.Resource, req.Namespace = pcrs, "team"
			if req.Operation == "" {
				req.Operation = apiserver.Create
			}
			err := p.Admit(ctx, &req)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want == "":
			case err == nil || err.Error() != c.want:
				t.Errorf("err = %v, want %q", err, c.want)
			case c.retry == apierrors.IsForbidden(err):
				t.Errorf("err %v: 403 = %v, want %v", err, apierrors.IsForbidden(err), !c.retry)
			}
		})
	}

	t.Run("a signer the node is authorized for", func(t *testing.T) {
		grants.asked = nil
		req := &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: pcrs, Namespace: "team",
			Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.SignerName = "example.com/other" })}
		p.Authorizer = authorizeFunc(func(_ context.Context, at apiserver.Attributes) (bool, string, error) {
			want := apiserver.Attributes{User: a, Verb: "request-serviceaccounts-podcertificate-signer", APIGroup: "certificates.k8s.io",
				APIVersion: "v1", Resource: "example.com:other", Namespace: "team", Name: "runner", ResourceRequest: true}
			return reflect.DeepEqual(at, want), "", nil
		})
		if err := p.Admit(ctx, req); err != nil {
			t.Errorf("refused: %v", err)
		}
		p.Authorizer = authorizeFunc(func(context.Context, apiserver.Attributes) (bool, string, error) {
			return false, "", errors.New("down")
		})
		if err := p.Admit(ctx, req); !apierrors.IsForbidden(err) {
			t.Errorf("authorizer down: %v, want 403", err)
		}
	})

	t.Run("other users pass", func(t *testing.T) {
		ctx := apiserver.WithUser(context.Background(), &apiserver.User{Name: "alice"})
		req := &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: pcrs, Namespace: "team",
			Obj: request(func(s *certificatesv1.PodCertificateRequestSpec) { s.NodeName = "b" })}
		if err := p.Admit(ctx, req); err != nil {
			t.Errorf("refused: %v", err)
		}
	})
}

type authorizeFunc func(context.Context, apiserver.Attributes) (bool, string, error)

func (f authorizeFunc) Authorize(ctx context.Context, a apiserver.Attributes) (bool, string, error) {
	return f(ctx, a)
}

func TestPodCertificateRequestSigning(t *testing.T) {
	pcrs := &registry.Resource{GroupVersion: certificatesv1.SchemeGroupVersion, Name: "podcertificaterequests", Namespaced: true}
	old := &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "req-1"},
		Spec: certificatesv1.PodCertificateRequestSpec{SignerName: "example.com/s"}}
	issued := old.DeepCopy()
	issued.Status.CertificateChain = "chain"
	for _, tt := range []struct {
		name     string
		sub      string
		obj, old *certificatesv1.PodCertificateRequest
		allow    map[string][]string
		want     string
	}{
		{"sign by name", "status", issued, old, map[string][]string{"sign": {"example.com/s"}}, ""},
		{"sign by domain", "status", issued, old, map[string][]string{"sign": {"example.com/*"}}, ""},
		{"sign without", "status", issued, old, map[string][]string{"approve": {"example.com/s"}},
			`PodCertificateRequest.certificates.k8s.io "req-1" is invalid: spec.signerName: Forbidden: User "bob" is not permitted to "sign" for signer "example.com/s"`},
		{"status without change", "status", old, old, nil, ""},
		{"main resource", "", issued, old, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &PodCertificateRequestSigning{Authorizer: &signerGrants{allow: tt.allow}}
			ctx := apiserver.WithUser(context.Background(), &apiserver.User{Name: "bob"})
			err := p.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: pcrs, Sub: tt.sub, Namespace: "team", Name: "req-1",
				Obj: tt.obj.DeepCopy(), Old: tt.old.DeepCopy()})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (!apierrors.IsInvalid(err) || err.Error() != tt.want):
				t.Errorf("err = %v, want 422 %q", err, tt.want)
			}
		})
	}
}
