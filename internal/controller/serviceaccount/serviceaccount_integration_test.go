package serviceaccount_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/skiff-io/skiff/internal/controller/serviceaccount"
	"github.com/skiff-io/skiff/test/framework"
)

// TestDefaultAccountAndRootCA: a new namespace gets the default
// ServiceAccount and kube-root-ca.crt; a deleted default account and a
// tampered ConfigMap are restored; a changed CA (a rotation) is
// republished in every namespace.
func TestDefaultAccountAndRootCA(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n")
	var current atomic.Pointer[[]byte]
	current.Store(&ca)
	changed := make(chan struct{}, 1)
	_, client, _ := framework.StartController(t, framework.Builder(serviceaccount.New, serviceaccount.Options{
		CurrentRootCA: func() []byte { return *current.Load() }, RootCAChanged: changed}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "default account and root CA in team", func() bool {
		_, err := client.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false
		}
		cm, err := client.CoreV1().ConfigMaps("team").Get(ctx, serviceaccount.RootCAConfigMap, metav1.GetOptions{})
		return err == nil && cm.Data["ca.crt"] == string(ca)
	})
	// Namespaces that existed before the controller started get them too.
	waitFor(ctx, t, "default account in kube-system", func() bool {
		_, err := client.CoreV1().ServiceAccounts("kube-system").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	old, err := client.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().ServiceAccounts("team").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "default account recreated", func() bool {
		sa, err := client.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		return err == nil && sa.UID != old.UID
	})

	cm, err := client.CoreV1().ConfigMaps("team").Get(ctx, serviceaccount.RootCAConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["ca.crt"] = "tampered"
	if _, err := client.CoreV1().ConfigMaps("team").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "root CA restored", func() bool {
		cm, err := client.CoreV1().ConfigMaps("team").Get(ctx, serviceaccount.RootCAConfigMap, metav1.GetOptions{})
		return err == nil && cm.Data["ca.crt"] == string(ca)
	})

	rotated := []byte("-----BEGIN CERTIFICATE-----\nrotated\n-----END CERTIFICATE-----\n")
	current.Store(&rotated)
	changed <- struct{}{}
	for _, ns := range []string{"team", "kube-system"} {
		waitFor(ctx, t, "the changed CA in "+ns, func() bool {
			cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, serviceaccount.RootCAConfigMap, metav1.GetOptions{})
			return err == nil && cm.Data["ca.crt"] == string(rotated)
		})
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
