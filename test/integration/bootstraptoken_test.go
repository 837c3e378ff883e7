package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
	"github.com/skiff-io/skiff/internal/bootstraptoken/tokencmd"
	"github.com/skiff-io/skiff/test/framework"
)

// whoami is `kubectl auth whoami` as the bearer of token.
func whoami(ctx context.Context, c *framework.Cluster, token string) (*authenticationv1.UserInfo, error) {
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &r.Status.UserInfo, nil
}

// A bootstrap token Secret authenticates its token as
// system:bootstrap:<id> in system:bootstrappers until it is deleted or
// expires; a wrong secret never does.
func TestBootstrapTokenAuthentication(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	secrets := c.Client.CoreV1().Secrets("kube-system")

	tok := bootstraptoken.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	spec := bootstraptoken.Spec{Token: tok, Expires: time.Now().Add(time.Hour),
		Usages:      []string{bootstraptoken.UsageAuthentication, bootstraptoken.UsageSigning},
		ExtraGroups: []string{"system:bootstrappers:workers"}}
	if _, err := secrets.Create(ctx, spec.Secret(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var u *authenticationv1.UserInfo
	var err error
	// The authenticator reads the watch cache: the Secret is there a
	// moment after the create.
	framework.Eventually(t, 5*time.Second, func() bool {
		u, err = whoami(ctx, c, tok.String())
		return err == nil
	})
	if u.Username != "system:bootstrap:abcdef" {
		t.Errorf("user %q, want system:bootstrap:abcdef", u.Username)
	}
	for _, g := range []string{"system:bootstrappers", "system:bootstrappers:workers", "system:authenticated"} {
		if !slices.Contains(u.Groups, g) {
			t.Errorf("groups %v: no %s", u.Groups, g)
		}
	}

	for name, bearer := range map[string]string{
		"wrong secret":     "abcdef.aaaaaaaaaaaaaaaa",
		"unknown id":       "zzzzzz.0123456789abcdef",
		"not of the shape": "abcdef.0123456789abcdeF",
	} {
		if _, err := whoami(ctx, c, bearer); !apierrors.IsUnauthorized(err) {
			t.Errorf("%s: want 401, got %v", name, err)
		}
	}

	// Expired: the same Secret with an expiration just past.
	sec, err := secrets.Get(ctx, bootstraptoken.SecretName(tok.ID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data[bootstraptoken.KeyExpiration] = []byte(time.Now().Add(-time.Second).UTC().Format(time.RFC3339))
	if sec, err = secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err = whoami(ctx, c, tok.String())
		return apierrors.IsUnauthorized(err)
	})
	// And back: it is the expiration that refused it.
	sec.Data[bootstraptoken.KeyExpiration] = []byte(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err = whoami(ctx, c, tok.String())
		return err == nil
	})

	// Deleted.
	if err := secrets.Delete(ctx, bootstraptoken.SecretName(tok.ID), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err = whoami(ctx, c, tok.String())
		return apierrors.IsUnauthorized(err)
	})
}

// `skiff token create|list|delete` (their code, without cobra): create
// prints a join string whose hash is the cluster CA's, whose token
// authenticates; list shows it; delete removes it, and a second delete
// fails.
func TestTokenCommands(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	ca := readCACert(t, filepath.Join(c.DataDir, "tls", "ca.crt"))

	cfg := tokencmd.Config{Kubeconfig: c.Kubeconfig, TTL: time.Hour, Description: "rack 4", Groups: []string{"system:bootstrappers:rack4"}}
	var out bytes.Buffer
	if err := tokencmd.Create(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	hash, tok, err := bootstraptoken.ParseJoin(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("create printed %q: %v", out.String(), err)
	}
	if hash != bootstraptoken.CAHash(ca) {
		t.Errorf("join string's hash %s, want the CA's %s", hash, bootstraptoken.CAHash(ca))
	}
	if err := bootstraptoken.VerifyCA(hash, []*x509.Certificate{ca}); err != nil {
		t.Error(err)
	}
	var u *authenticationv1.UserInfo
	framework.Eventually(t, 5*time.Second, func() bool {
		u, err = whoami(ctx, c, tok.String())
		return err == nil
	})
	if u.Username != "system:bootstrap:"+tok.ID || !slices.Contains(u.Groups, "system:bootstrappers:rack4") {
		t.Errorf("authenticated as %s in %v", u.Username, u.Groups)
	}

	// A kubeconfig without the CA: the hash comes from cluster-info.
	kc, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range kc.Clusters {
		cl.CertificateAuthorityData, cl.CertificateAuthority, cl.InsecureSkipTLSVerify = nil, "", true
	}
	insecure := filepath.Join(t.TempDir(), "insecure.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, insecure); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := tokencmd.Create(ctx, tokencmd.Config{Kubeconfig: insecure, TTL: 0}, &out); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	hash2, forever, err := bootstraptoken.ParseJoin(lines[len(lines)-1])
	if err != nil || hash2 != hash {
		t.Errorf("create with cluster-info's CA printed %q (%v), want the hash %s", out.String(), err, hash)
	}
	if !strings.Contains(out.String(), "never expires") {
		t.Errorf("--ttl 0: %q", out.String())
	}

	out.Reset()
	var errs bytes.Buffer
	if err := tokencmd.List(ctx, tokencmd.Config{Kubeconfig: c.Kubeconfig}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	listed := out.String()
	if !strings.HasPrefix(listed, "TOKEN ") || !strings.Contains(listed, "EXTRA GROUPS") {
		t.Errorf("list header:\n%s", listed)
	}
	for _, want := range [][]string{
		{tok.String(), "authentication,signing", "rack 4", "system:bootstrappers:rack4"},
		{forever.String(), "<forever>", "<never>"},
	} {
		found := false
		for _, line := range strings.Split(listed, "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no line of the list has %q:\n%s", want, listed)
		}
	}
	if errs.Len() != 0 {
		t.Errorf("list warned: %s", errs.String())
	}

	out.Reset()
	if err := tokencmd.Delete(ctx, tokencmd.Config{Kubeconfig: c.Kubeconfig}, []string{tok.String(), forever.ID}, &out); err != nil {
		t.Fatal(err)
	}
	want := `bootstrap token "` + tok.ID + `" deleted` + "\n" + `bootstrap token "` + forever.ID + `" deleted` + "\n"
	if out.String() != want {
		t.Errorf("delete printed %q, want %q", out.String(), want)
	}
	err = tokencmd.Delete(ctx, tokencmd.Config{Kubeconfig: c.Kubeconfig}, []string{tok.ID}, &out)
	if err == nil || err.Error() != `bootstrap token "`+tok.ID+`" not found` {
		t.Errorf("deleting a missing token: %v", err)
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err = whoami(ctx, c, tok.String())
		return apierrors.IsUnauthorized(err)
	})
}

func readCACert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
