package bootstraptoken

import (
	"context"
	"sync"
	"testing"
	"time"

	tokens "github.com/skiff-io/skiff/internal/bootstraptoken"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func token(name, ns string, typ corev1.SecretType, expiration string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Type:       typ,
		Data:       map[string][]byte{"token-id": []byte("abcdef"), "token-secret": []byte("0123456789abcdef")},
	}
	if expiration != "" {
		s.Data[tokens.KeyExpiration] = []byte(expiration)
	}
	return s
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		want   time.Time
		wantOK bool
	}{
		{name: "none"},
		{name: "rfc3339", value: "2026-03-01T13:00:00Z", want: t0.Add(time.Hour), wantOK: true},
		{name: "with offset", value: "2026-03-01T14:00:00+01:00", want: t0.Add(time.Hour), wantOK: true},
		{name: "unparseable is expired", value: "tomorrow", want: time.Time{}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := expiry(token("bootstrap-token-abcdef", tokens.Namespace, corev1.SecretTypeBootstrapToken, tt.value))
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("expiry = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// harness is a fake clientset holding objs, the cleaner over it at the
// clock's time, and its synced Secret cache.
func harness(t *testing.T, now time.Time, objs ...*corev1.Secret) (*fake.Clientset, *Cleaner) {
	t.Helper()
	client := fake.NewClientset()
	for _, o := range objs {
		if err := client.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	opts := Options{}
	if !now.IsZero() {
		opts.Clock = clocktesting.NewFakePassiveClock(now)
	}
	c, err := New(client, factory, opts)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(t.Context().Done())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), c.synced) {
		t.Fatal("secret cache did not sync")
	}
	return client, c
}

func TestSync(t *testing.T) {
	past, future := t0.Add(-time.Second).Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339)
	tests := []struct {
		name    string
		secret  *corev1.Secret
		deleted bool
	}{
		{"expired", token("bootstrap-token-aaaaaa", tokens.Namespace, corev1.SecretTypeBootstrapToken, past), true},
		{"unparseable expiration", token("bootstrap-token-bbbbbb", tokens.Namespace, corev1.SecretTypeBootstrapToken, "soon"), true},
		{"not yet", token("bootstrap-token-cccccc", tokens.Namespace, corev1.SecretTypeBootstrapToken, future), false},
		{"no expiration", token("bootstrap-token-dddddd", tokens.Namespace, corev1.SecretTypeBootstrapToken, ""), false},
		{"another type", token("opaque", tokens.Namespace, corev1.SecretTypeOpaque, past), false},
		{"another namespace", token("bootstrap-token-eeeeee", "default", corev1.SecretTypeBootstrapToken, past), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, c := harness(t, t0, tt.secret)
			if err := c.expiry.Sync(t.Context(), tt.secret.Namespace+"/"+tt.secret.Name); err != nil {
				t.Fatal(err)
			}
			_, err := client.CoreV1().Secrets(tt.secret.Namespace).Get(t.Context(), tt.secret.Name, metav1.GetOptions{})
			if deleted := apierrors.IsNotFound(err); deleted != tt.deleted {
				t.Errorf("deleted = %v (%v), want %v", deleted, err, tt.deleted)
			}
		})
	}
}

// A token is deleted when it expires, not before: the cleaner requeues it
// for the time left.
func TestDeletesAtExpiry(t *testing.T) {
	expires := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	s := token("bootstrap-token-ffffff", tokens.Namespace, corev1.SecretTypeBootstrapToken, expires.Format(time.RFC3339))
	keep := token("bootstrap-token-gggggg", tokens.Namespace, corev1.SecretTypeBootstrapToken, time.Now().Add(time.Hour).Format(time.RFC3339))
	client, c := harness(t, time.Time{}, s, keep)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Start(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	secrets := client.CoreV1().Secrets(tokens.Namespace)
	var gone time.Time
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
		gone = time.Now()
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal("expired token was not deleted")
	}
	if gone.Before(expires) {
		t.Errorf("deleted at %v, before it expired at %v", gone, expires)
	}
	if _, err := secrets.Get(ctx, keep.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("token valid for an hour: %v", err)
	}
}
