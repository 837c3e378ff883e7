package integration

import (
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// A token from serviceaccounts/token authenticates as the account, and
// stops working when the account or the pod it is bound to is deleted.
func TestServiceAccountTokens(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "tok")
	sa, err := cs.CoreV1().ServiceAccounts("tok").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("tok").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	request := func(bound *authenticationv1.BoundObjectReference, secs int64) (string, error) {
		tr, err := cs.CoreV1().ServiceAccounts("tok").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs, BoundObjectRef: bound}}, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.IsZero() {
			t.Fatalf("token request status: %+v", tr.Status)
		}
		return tr.Status.Token, nil
	}
	as := func(token string) kubernetes.Interface {
		cfg := rest.AnonymousClientConfig(c.Config)
		cfg.BearerToken = token
		return kubernetes.NewForConfigOrDie(cfg)
	}
	if _, err := request(nil, 60); !apierrors.IsInvalid(err) {
		t.Fatalf("a 60 s token: want 422, got %v", err)
	}
	plain, err := request(nil, 3600)
	if err != nil {
		t.Fatal(err)
	}
	bound, err := request(&authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", UID: pod.UID}, 3600)
	if err != nil {
		t.Fatal(err)
	}
	bind(t, cs, "tok", "robot-view", "view", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "robot", Namespace: "tok"})
	for name, tok := range map[string]string{"plain": plain, "pod-bound": bound} {
		var err error
		framework.Eventually(t, 5*time.Second, func() bool {
			_, err = as(tok).CoreV1().Pods("tok").List(ctx, metav1.ListOptions{})
			return !apierrors.IsForbidden(err) // the binding reached the authorizer
		})
		if err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	if _, err := as(plain+"x").CoreV1().Pods("tok").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("a forged token: want 401, got %v", err)
	}
	zero := int64(0)
	if err := cs.CoreV1().Pods("tok").Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err := as(bound).CoreV1().Pods("tok").List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err)
	})
	if _, err := as(plain).CoreV1().Pods("tok").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the unbound token after the pod is gone: %v", err)
	}
	if err := cs.CoreV1().ServiceAccounts("tok").Delete(ctx, sa.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err := as(plain).CoreV1().Pods("tok").List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err)
	})
}

// A token bound to a pod on a node names the node too, as upstream's
// (ServiceAccountTokenPodNodeInfo): a TokenReview of it reports the
// node's name and uid; the conformance test "should mount an API token
// into pods" checks them.
func TestPodBoundTokenNamesNode(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "tokn")
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts("tokn").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("tokn").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "robot", NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("tokn").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", UID: pod.UID}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	extra := review.Status.User.Extra
	if !review.Status.Authenticated || len(extra["authentication.kubernetes.io/node-name"]) != 1 || extra["authentication.kubernetes.io/node-name"][0] != "n1" ||
		len(extra["authentication.kubernetes.io/node-uid"]) != 1 || extra["authentication.kubernetes.io/node-uid"][0] != string(node.UID) {
		t.Fatalf("review of a pod-bound token: authenticated %v, extra %v; want node-name n1 and node-uid %s", review.Status.Authenticated, extra, node.UID)
	}
}
