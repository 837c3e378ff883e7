package certificates

import (
	"testing"

	certv1 "k8s.io/api/certificates/v1"
)

func TestSignerChecks(t *testing.T) {
	node := nodeClient("n1")
	serving := request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, ips: []string{"10.0.0.1"}}
	u := func(us ...certv1.KeyUsage) []certv1.KeyUsage { return us }
	const (
		ds = certv1.UsageDigitalSignature
		ke = certv1.UsageKeyEncipherment
		ca = certv1.UsageClientAuth
		sa = certv1.UsageServerAuth
	)
	tests := []struct {
		name    string
		signer  string
		req     request
		usages  []certv1.KeyUsage
		wantErr string // "" for valid
	}{
		{"client ecdsa", certv1.KubeAPIServerClientKubeletSignerName, node, u(ds, ca), ""},
		{"client rsa", certv1.KubeAPIServerClientKubeletSignerName, node, u(ke, ds, ca), ""},
		{"client duplicate usage", certv1.KubeAPIServerClientKubeletSignerName, node, u(ds, ca, ca), ""},
		{"client without digital signature", certv1.KubeAPIServerClientKubeletSignerName, node, u(ca), "usages did not match [client auth digital signature key encipherment]"},
		{"client with server auth", certv1.KubeAPIServerClientKubeletSignerName, node, u(ds, ca, sa), "usages did not match [client auth digital signature key encipherment]"},
		{"client other org", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "system:node:n1", orgs: []string{"system:masters"}}, u(ds, ca), "subject organization is not system:nodes"},
		{"client two orgs", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes", "system:masters"}}, u(ds, ca), "subject organization is not system:nodes"},
		{"client not a node", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "admin", orgs: []string{"system:nodes"}}, u(ds, ca), "subject common name does not begin with system:node:"},
		{"client dns", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}}, u(ds, ca), "DNS subjectAltNames are not allowed"},
		{"client ip", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, ips: []string{"10.0.0.1"}}, u(ds, ca), "IP subjectAltNames are not allowed"},
		{"client email", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, email: []string{"a@b.c"}}, u(ds, ca), "Email subjectAltNames are not allowed"},

		{"serving", certv1.KubeletServingSignerName, serving, u(ds, ke, sa), ""},
		{"serving ecdsa", certv1.KubeletServingSignerName, serving, u(ds, sa), ""},
		{"serving ip only", certv1.KubeletServingSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, ips: []string{"10.0.0.1"}}, u(ds, sa), ""},
		{"serving no names", certv1.KubeletServingSignerName, node, u(ds, sa), "DNS or IP subjectAltName is required"},
		{"serving client auth", certv1.KubeletServingSignerName, serving, u(ds, sa, ca), "usages did not match [digital signature key encipherment server auth]"},
		{"serving not a node", certv1.KubeletServingSignerName, request{cn: "n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}}, u(ds, sa), "subject common name does not begin with system:node:"},
		{"serving email", certv1.KubeletServingSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, email: []string{"a@b.c"}}, u(ds, sa), "Email subjectAltNames are not allowed"},
		{"serving other org", certv1.KubeletServingSignerName, request{cn: "system:node:n1", dns: []string{"n1"}}, u(ds, sa), "subject organization is not system:nodes"},

		{"apiserver client", certv1.KubeAPIServerClientSignerName, request{cn: "jane", orgs: []string{"devs"}}, u(ca), ""},
		{"apiserver client all", certv1.KubeAPIServerClientSignerName, request{cn: "jane"}, u(ds, ke, ca), ""},
		{"apiserver client no client auth", certv1.KubeAPIServerClientSignerName, request{cn: "jane"}, u(ds), "missing required usage for client certificate: client auth"},
		{"apiserver client server auth", certv1.KubeAPIServerClientSignerName, request{cn: "jane"}, u(ca, sa), "invalid usage for client certificate: server auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signerChecks[tt.signer](parsed(t, pemRequest(t, tt.req)), tt.usages)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("check = %q, want %q", got, tt.wantErr)
			}
		})
	}
	if len(signerChecks) != 3 {
		t.Errorf("csrsigning serves %d signers, want 3", len(signerChecks))
	}
}
