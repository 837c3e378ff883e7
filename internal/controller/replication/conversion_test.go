package replication

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestConversionRoundTrip(t *testing.T) {
	replicas := int32(3)
	when := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: types.UID("u1"), ResourceVersion: "42", Generation: 2,
			Labels: map[string]string{"app": "web"}},
		Spec: corev1.ReplicationControllerSpec{
			Replicas:        &replicas,
			MinReadySeconds: 5,
			Selector:        map[string]string{"app": "web"},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
		Status: corev1.ReplicationControllerStatus{
			Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 2,
			Conditions: []corev1.ReplicationControllerCondition{{Type: corev1.ReplicationControllerReplicaFailure,
				Status: corev1.ConditionTrue, LastTransitionTime: when, Reason: "FailedCreate", Message: "quota"}},
		},
	}
	rs := toReplicaSet(rc)
	if got := rs.Spec.Selector.MatchLabels; !cmp.Equal(got, rc.Spec.Selector) || len(rs.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("selector %+v, want matchLabels %v", rs.Spec.Selector, rc.Spec.Selector)
	}
	if rs.Name != "web" || rs.UID != "u1" || rs.ResourceVersion != "42" || rs.Generation != 2 || *rs.Spec.Replicas != 3 ||
		rs.Spec.MinReadySeconds != 5 || rs.Spec.Template.Spec.Containers[0].Image != "nginx" {
		t.Errorf("converted ReplicaSet %+v", rs)
	}
	if len(rs.Status.Conditions) != 1 || rs.Status.Conditions[0].Type != "ReplicaFailure" || rs.Status.Conditions[0].Message != "quota" ||
		rs.Status.ReadyReplicas != 2 || rs.Status.AvailableReplicas != 1 || rs.Status.FullyLabeledReplicas != 2 {
		t.Errorf("converted status %+v", rs.Status)
	}
	if diff := cmp.Diff(rc, fromReplicaSet(rs)); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// No conditions stays no conditions (the controller compares status
	// with DeepEqual), and an RC without a template converts.
	bare := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}
	if rs := toReplicaSet(bare); rs.Status.Conditions != nil || fromReplicaSet(rs).Status.Conditions != nil {
		t.Errorf("nil conditions became %v", rs.Status.Conditions)
	}
}
