package bootstraptoken_test

import (
	"context"
	"testing"
	"time"

	tokens "github.com/skiff-io/skiff/internal/bootstraptoken"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/skiff-io/skiff/internal/controller/bootstraptoken"
	"github.com/skiff-io/skiff/test/framework"
)

// The server runs the token cleaner as kube-system/token-cleaner, whose
// Role in kube-system lets it delete an expired token.
func TestServerDeletesExpiredToken(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers(bootstraptoken.Name))
	client := cluster.NewClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	secrets := client.CoreV1().Secrets(tokens.Namespace)
	for name, expiration := range map[string]time.Time{
		"bootstrap-token-aaaaaa": time.Now().Add(-time.Minute),
		"bootstrap-token-bbbbbb": time.Now().Add(time.Hour),
	} {
		_, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Type:       corev1.SecretTypeBootstrapToken,
			StringData: map[string]string{"token-id": name[len(name)-6:], "token-secret": "0123456789abcdef",
				tokens.KeyExpiration: expiration.UTC().Format(time.RFC3339)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := secrets.Get(ctx, "bootstrap-token-aaaaaa", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal("expired bootstrap token was not deleted")
	}
	if _, err := secrets.Get(ctx, "bootstrap-token-bbbbbb", metav1.GetOptions{}); err != nil {
		t.Errorf("unexpired token: %v", err)
	}
}
