package certificates

import (
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// A PodCertificateRequest goes 15 minutes after its creation, whatever
// its state; a younger one stays.
func TestPodCertificateRequestCleanerSync(t *testing.T) {
	mk := func(name string, age time.Duration, issued bool) *certv1.PodCertificateRequest {
		r := &certv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: "uid-x",
			CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
		if issued {
			r.Status.Conditions = []metav1.Condition{{Type: certv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue}}
		}
		return r
	}
	for _, tt := range []struct {
		name    string
		r       *certv1.PodCertificateRequest
		deleted bool
	}{
		{"pending 15 minutes", mk("old-pending", 15*time.Minute, false), true},
		{"issued an hour ago", mk("old-issued", time.Hour, true), true},
		{"pending 14 minutes", mk("new-pending", 14*time.Minute, false), false},
		{"issued a minute ago", mk("new-issued", time.Minute, true), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.r)
			factory := informers.NewSharedInformerFactory(client, 0)
			c, err := NewPodCertificateRequestCleaner(client, factory, CleanerOptions{Clock: clocktesting.NewFakePassiveClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			factory.Start(t.Context().Done())
			t.Cleanup(factory.Shutdown)
			factory.WaitForCacheSync(t.Context().Done())
			if err := c.expiry.Sync(t.Context(), "team/"+tt.r.Name); err != nil {
				t.Fatal(err)
			}
			_, err = client.CertificatesV1().PodCertificateRequests("team").Get(t.Context(), tt.r.Name, metav1.GetOptions{})
			if deleted := apierrors.IsNotFound(err); deleted != tt.deleted {
				t.Errorf("deleted = %v (%v), want %v", deleted, err, tt.deleted)
			}
		})
	}
}
