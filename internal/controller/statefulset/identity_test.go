package statefulset

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOrdinalOf(t *testing.T) {
	for _, tc := range []struct {
		set, pod string
		want     int
		ok       bool
	}{
		{"web", "web-0", 0, true},
		{"web", "web-12", 12, true},
		{"web", "web-012", 0, false},
		{"web", "web--1", 0, false},
		{"web", "web-", 0, false},
		{"web", "web-a", 0, false},
		{"web", "webx-1", 0, false},
		{"web", "web-db-1", 0, false},
		{"web-db", "web-db-1", 1, true},
	} {
		got, ok := ordinalOf(tc.set, tc.pod)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ordinalOf(%q, %q) = %d, %v; want %d, %v", tc.set, tc.pod, got, ok, tc.want, tc.ok)
		}
	}
}

func testSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "set-uid"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "nginx",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}},
					Volumes:    []corev1.Volume{{Name: "www", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "www", Labels: map[string]string{"tier": "data"}},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

func TestNewPod(t *testing.T) {
	set := testSet()
	p := newPod(set, &set.Spec.Template, 2, "web-abc")
	if p.Name != "web-2" || p.Namespace != "ns" || p.Spec.Hostname != "web-2" || p.Spec.Subdomain != "nginx" {
		t.Errorf("identity: name %q ns %q hostname %q subdomain %q", p.Name, p.Namespace, p.Spec.Hostname, p.Spec.Subdomain)
	}
	wantLabels := map[string]string{
		"app":                                 "web",
		appsv1.StatefulSetPodNameLabel:        "web-2",
		appsv1.PodIndexLabel:                  "2",
		appsv1.ControllerRevisionHashLabelKey: "web-abc",
	}
	if d := cmp.Diff(wantLabels, p.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].PersistentVolumeClaim == nil || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "www-web-2" {
		t.Errorf("volumes = %+v, want www from claim www-web-2", p.Spec.Volumes)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != "set-uid" || ref.Kind != "StatefulSet" {
		t.Errorf("controller = %+v", ref)
	}
	if set.Spec.Template.Labels[appsv1.StatefulSetPodNameLabel] != "" || set.Spec.Template.Spec.Volumes[0].EmptyDir == nil {
		t.Errorf("newPod modified the set's template")
	}

	claims := newClaims(set, 2)
	if len(claims) != 1 || claims[0].Name != "www-web-2" || claims[0].Namespace != "ns" ||
		claims[0].Labels["app"] != "web" || claims[0].Labels["tier"] != "data" || len(claims[0].OwnerReferences) != 0 {
		t.Errorf("claims = %+v", claims)
	}
}

func TestRevisionRoundTrip(t *testing.T) {
	set := testSet()
	data, err := revisionData(&set.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	h := revisionHash(data, nil)
	again, _ := revisionData(&set.Spec.Template)
	if revisionHash(again, nil) != h {
		t.Fatal("hash is not deterministic")
	}
	one := int32(1)
	if revisionHash(data, &one) == h {
		t.Error("collisionCount does not change the hash")
	}
	cr := newRevision(set, data, h, 3)
	if cr.Name != "web-"+h || cr.Revision != 3 || cr.Labels["app"] != "web" || cr.Labels[appsv1.ControllerRevisionHashLabelKey] != h {
		t.Errorf("revision = %+v", cr.ObjectMeta)
	}
	got, err := templateOf(cr)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&set.Spec.Template, got); d != "" {
		t.Errorf("template round trip (-want +got):\n%s", d)
	}
	set.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	changed, _ := revisionData(&set.Spec.Template)
	if revisionHash(changed, nil) == h {
		t.Error("a template change kept the hash")
	}
}

func TestRevisionsToDelete(t *testing.T) {
	rev := func(name string, n int64) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name}, Revision: n}
	}
	revs := []*appsv1.ControllerRevision{rev("r4", 4), rev("r1", 1), rev("r3", 3), rev("r2", 2), rev("r5", 5)}
	live := map[string]bool{"r5": true, "r1": true}
	var names []string
	for _, r := range revisionsToDelete(revs, live, 1) {
		names = append(names, r.Name)
	}
	if d := cmp.Diff([]string{"r2", "r3"}, names); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := revisionsToDelete(revs, live, 3); got != nil {
		t.Errorf("within limit: %v", got)
	}
}
