package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/etcd/etcdtest"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// TestSharedKeysThroughEtcd starts two servers on one external etcd with
// the same --token: the second takes the first's CA and service-account
// key from etcd, so credentials of either work on both; a server with
// another token is refused.
func TestSharedKeysThroughEtcd(t *testing.T) {
	endpoints, _ := etcdtest.StartTestCluster(t, 1)
	token := func(tok string) framework.Option { return func(c *server.Config) { c.Token = tok } }
	a := framework.StartInProcess(t, framework.WithEtcd(endpoints), token("a-shared-secret-of-the-cluster"))
	b := framework.StartInProcess(t, framework.WithEtcd(endpoints), token("a-shared-secret-of-the-cluster"))
	for _, f := range []string{"tls/ca.crt", "tls/ca.key", "tls/service-account.key"} {
		fa, errA := os.ReadFile(filepath.Join(a.DataDir, f))
		fb, errB := os.ReadFile(filepath.Join(b.DataDir, f))
		if errA != nil || errB != nil || !bytes.Equal(fa, fb) {
			t.Fatalf("%s differs between the two servers (%v, %v)", f, errA, errB)
		}
	}
	// a's admin certificate on b, and a service-account token b issued on a.
	ctx := context.Background()
	onB := rest.CopyConfig(a.Config)
	onB.Host = b.Config.Host
	if _, err := kubernetes.NewForConfigOrDie(onB).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("server a's admin certificate on server b: %v", err)
	}
	if _, err := b.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := b.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bearer := rest.AnonymousClientConfig(a.Config)
	bearer.BearerToken = tr.Status.Token
	review, err := kubernetes.NewForConfigOrDie(bearer).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username != "system:serviceaccount:default:robot" {
		t.Fatalf("a service-account token of server b on server a: %v, %+v", err, review)
	}

	cfg := server.Defaults()
	cfg.DataDir, cfg.HTTPSPort, cfg.DisableAgent = t.TempDir(), framework.FreePort(t), true
	cfg.EtcdServers, cfg.Token = endpoints, "another-secret-altogether"
	err = server.Run(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "--token does not open the cluster's keys") {
		t.Fatalf("a server with another token: %v, want it refused", err)
	}
}
