package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// resourceVersion semantics of LIST over HTTP: "0" from the cache, exact
// versions from etcd history, and 410 for a compacted or bad version.
func TestListResourceVersions(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "rv")
	cms := cs.CoreV1().ConfigMaps("rv")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil || len(first.Items) != 1 {
		t.Fatalf("list: %v %v", err, first)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exact, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil || len(exact.Items) != 1 || exact.ResourceVersion != first.ResourceVersion {
		t.Fatalf("exact list at %s: %v, %d items at %s", first.ResourceVersion, err, len(exact.Items), exact.ResourceVersion)
	}
	latest, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil || len(latest.Items) != 2 {
		t.Fatalf("consistent list: %v, %d items", err, len(latest.Items))
	}
	if _, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: "0"}); err != nil {
		t.Fatalf("list at 0: %v", err)
	}
	if _, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: "banana"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("list at a bad version: want BadRequest, got %v", err)
	}
	if _, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchExact}); !apierrors.IsBadRequest(err) {
		t.Fatalf("exact match at 0: want BadRequest, got %v", err)
	}
}

// Deletion with a propagation policy records the garbage collector's
// finalizer and leaves the object terminating, as upstream.
func TestDeletePropagationRecorded(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "gc")
	for policy, finalizer := range map[metav1.DeletionPropagation]string{
		metav1.DeletePropagationForeground: metav1.FinalizerDeleteDependents,
		metav1.DeletePropagationOrphan:     metav1.FinalizerOrphanDependents,
	} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower("cm-" + string(policy))}}
		if _, err := cs.CoreV1().ConfigMaps("gc").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := policy
		if err := cs.CoreV1().ConfigMaps("gc").Delete(ctx, cm.Name, metav1.DeleteOptions{PropagationPolicy: &p}); err != nil {
			t.Fatalf("delete %s: %v", policy, err)
		}
		got, err := cs.CoreV1().ConfigMaps("gc").Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil || got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, finalizer) {
			t.Fatalf("after %s delete: %v, finalizers %v, deletionTimestamp %v", policy, err, got.Finalizers, got.DeletionTimestamp)
		}
	}
	bg := metav1.DeletePropagationBackground
	if _, err := cs.CoreV1().ConfigMaps("gc").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bg"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps("gc").Delete(ctx, "bg", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("gc").Get(ctx, "bg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("background delete: want gone at once, got %v", err)
	}
}

// A bearer token from --token-auth-file authenticates; a wrong one gets 401.
func TestTokenFileAuthentication(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte("s3cret,alice,1001,\"devs,ops\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithTokenFile(tokens), framework.WithControllers())
	bindCluster(t, c.Client, "alice-view", "view", rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"})
	for token, wantOK := range map[string]bool{"s3cret": true, "wrong": false} {
		cfg := &rest.Config{Host: c.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: c.Config.CAData, CAFile: c.Config.CAFile}}
		cs := kubernetes.NewForConfigOrDie(cfg)
		_, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
		if wantOK && apierrors.IsForbidden(err) {
			// Authenticated; the binding may not have reached the
			// authorizer yet.
			framework.Eventually(t, 5*time.Second, func() bool {
				_, err = cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
				return !apierrors.IsForbidden(err)
			})
		}
		if wantOK && err != nil {
			t.Errorf("token %q: %v", token, err)
		}
		if !wantOK && !apierrors.IsUnauthorized(err) {
			t.Errorf("token %q: want 401, got %v", token, err)
		}
	}
}
