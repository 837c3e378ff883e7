package volume

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestClientSources(t *testing.T) {
	ctx := context.Background()
	c := fake.NewSimpleClientset(
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"}, Data: map[string]string{"k": "v"}},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"k": []byte("v")}},
		&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "runner"}},
	)
	src := NewClientSources(c)

	cm, err := GetConfigMap(ctx, src, "ns", "cfg")
	if err != nil || cm.Data["k"] != "v" {
		t.Errorf("GetConfigMap = %v, %v", cm, err)
	}
	s, err := GetSecret(ctx, src, "ns", "sec")
	if err != nil || string(s.Data["k"]) != "v" {
		t.Errorf("GetSecret = %v, %v", s, err)
	}
	tests := []struct {
		get  func() error
		want string
	}{
		{func() error { _, err := GetConfigMap(ctx, src, "ns", "x"); return err }, `configmap "x" not found`},
		{func() error { _, err := GetSecret(ctx, src, "ns", "x"); return err }, `secret "x" not found`},
	}
	for _, tc := range tests {
		err := tc.get()
		if err == nil || err.Error() != tc.want || !apierrors.IsNotFound(err) {
			t.Errorf("error = %v, want NotFound %q", err, tc.want)
		}
	}
	c.PrependReactor("create", "serviceaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		ca := a.(clienttesting.CreateAction)
		if a.GetSubresource() != "token" || a.GetNamespace() != "ns" {
			return false, nil, nil
		}
		tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		tr.Status.Token = "minted"
		return true, tr, nil
	})
	tr, err := src.Token(ctx, "ns", "runner", &authenticationv1.TokenRequest{})
	if err != nil || tr.Status.Token != "minted" {
		t.Errorf("Token through the clientset = %v, %v", tr, err)
	}
}
