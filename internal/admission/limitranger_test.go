package admission

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

const rangePrefix = "/registry/limitranges/"

// rangeStore is a limitranges store (List only): cached answers lists at
// resourceVersion "0", stored the others.
type rangeStore struct {
	storage.Interface
	cached, stored []*corev1.LimitRange
	liveLists      int
}

func (s *rangeStore) List(_ context.Context, prefix string, opts storage.ListOptions, out runtime.Object) error {
	from := s.stored
	if opts.ResourceVersion == "0" {
		from = s.cached
	} else {
		s.liveLists++
	}
	list := out.(*corev1.LimitRangeList)
	for _, lr := range from {
		if strings.HasPrefix(rangePrefix+lr.Namespace+"/", prefix) {
			list.Items = append(list.Items, *lr.DeepCopy())
		}
	}
	return nil
}

// containerRange is the upstream e2e test's LimitRange, with the
// defaults its registry defaulting leaves.
func containerRange() *corev1.LimitRange {
	return &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "limit-range", Namespace: "ns"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			Min:            rlist("cpu", "50m", "memory", "100Mi", "ephemeral-storage", "100Gi"),
			Max:            rlist("cpu", "500m", "memory", "500Mi", "ephemeral-storage", "500Gi"),
			Default:        rlist("cpu", "500m", "memory", "500Mi", "ephemeral-storage", "500Gi"),
			DefaultRequest: rlist("cpu", "100m", "memory", "200Mi", "ephemeral-storage", "200Gi"),
		}}},
	}
}

var claimsRes = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "persistentvolumeclaims", Namespaced: true}

// admitBoth runs LimitRanger's mutating then validating half.
func admitBoth(l *LimitRanger, req *apiserver.AdmissionRequest) error {
	if err := l.Admit(context.Background(), req); err != nil {
		return err
	}
	return l.Validate().Admit(context.Background(), req)
}

func TestLimitRangerDefaults(t *testing.T) {
	l := &LimitRanger{Ranges: &rangeStore{cached: []*corev1.LimitRange{containerRange()}}, Prefix: rangePrefix}
	pod := quotaPod("pod-no-resources", nil, nil)
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Limits: rlist("cpu", "200m")}}}
	if err := admitBoth(l, createReq(podsRes, pod)); err != nil {
		t.Fatalf("admit: %v", err)
	}
	want := corev1.ResourceRequirements{
		Requests: rlist("cpu", "100m", "memory", "200Mi", "ephemeral-storage", "200Gi"),
		Limits:   rlist("cpu", "500m", "memory", "500Mi", "ephemeral-storage", "500Gi"),
	}
	if diff := cmp.Diff(quantities(want.Requests), quantities(pod.Spec.Containers[0].Resources.Requests)); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(quantities(want.Limits), quantities(pod.Spec.Containers[0].Resources.Limits)); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	// The init container keeps its own cpu limit.
	if got := pod.Spec.InitContainers[0].Resources.Limits.Cpu().String(); got != "200m" {
		t.Errorf("init container cpu limit = %s, want its own 200m", got)
	}
	wantNote := "LimitRanger plugin set: cpu, ephemeral-storage, memory request for container c; " +
		"cpu, ephemeral-storage, memory limit for container c; " +
		"cpu, ephemeral-storage, memory request for init container init; ephemeral-storage, memory limit for init container init"
	if got := pod.Annotations[limitRangerAnnotation]; got != wantNote {
		t.Errorf("annotation:\n got %s\nwant %s", got, wantNote)
	}
}

func TestLimitRangerValidation(t *testing.T) {
	ratio := containerRange()
	ratio.Spec.Limits = append(ratio.Spec.Limits, corev1.LimitRangeItem{Type: corev1.LimitTypePod, MaxLimitRequestRatio: rlist("cpu", "2")})
	claims := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "claims", Namespace: "ns"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim,
			Min: rlist("storage", "1Gi"), Max: rlist("storage", "10Gi")}}}}
	claim := func(size string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns"},
			Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: rlist("storage", size)}}}
	}
	tests := []struct {
		name    string
		ranges  []*corev1.LimitRange
		req     *apiserver.AdmissionRequest
		wantErr string
	}{{
		name:   "partial requirements merge with the defaults",
		ranges: []*corev1.LimitRange{containerRange()},
		// The API server's defaulting has made the cpu request the limit.
		req: createReq(podsRes, quotaPod("partial", rlist("cpu", "300m", "memory", "150Mi", "ephemeral-storage", "150Gi"), rlist("cpu", "300m"))),
	}, {
		name:   "below min",
		ranges: []*corev1.LimitRange{containerRange()},
		req:    createReq(podsRes, quotaPod("pfpod", rlist("cpu", "10m", "memory", "50Mi", "ephemeral-storage", "50Gi"), nil)),
		wantErr: `pods "pfpod" is forbidden: [minimum cpu usage per Container is 50m, but request is 10m, ` +
			`minimum ephemeral-storage usage per Container is 100Gi, but request is 50Gi, minimum memory usage per Container is 100Mi, but request is 50Mi]`,
	}, {
		name:   "above max",
		ranges: []*corev1.LimitRange{containerRange()},
		req:    createReq(podsRes, quotaPod("pfpod", rlist("cpu", "600m", "memory", "600Mi", "ephemeral-storage", "600Gi"), nil)),
		// The default limits (500m...) are below the requests: upstream
		// reports the requests over max.
		wantErr: `pods "pfpod" is forbidden: [maximum cpu usage per Container is 500m, but request is 600m, ` +
			`maximum ephemeral-storage usage per Container is 500Gi, but request is 600Gi, maximum memory usage per Container is 500Mi, but request is 600Mi]`,
	}, {
		name:   "one violation is not a list",
		ranges: []*corev1.LimitRange{containerRange()},
		req: createReq(podsRes, quotaPod("pfpod", rlist("cpu", "100m", "memory", "200Mi", "ephemeral-storage", "200Gi"),
			rlist("cpu", "1", "memory", "500Mi", "ephemeral-storage", "500Gi"))),
		wantErr: `pods "pfpod" is forbidden: maximum cpu usage per Container is 500m, but limit is 1`,
	}, {
		name:   "pod limit to request ratio",
		ranges: []*corev1.LimitRange{ratio},
		req: createReq(podsRes, quotaPod("ratio", rlist("cpu", "100m", "memory", "200Mi", "ephemeral-storage", "200Gi"),
			rlist("cpu", "500m", "memory", "500Mi", "ephemeral-storage", "500Gi"))),
		wantErr: `pods "ratio" is forbidden: cpu max limit to request ratio per Pod is 2, but provided ratio is 5.000000`,
	}, {
		name:    "claim below min",
		ranges:  []*corev1.LimitRange{claims},
		req:     createReq(claimsRes, claim("500Mi")),
		wantErr: `persistentvolumeclaims "data" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi`,
	}, {
		name:   "claim grown above max",
		ranges: []*corev1.LimitRange{claims},
		req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: claimsRes, Namespace: "ns", Name: "data",
			Obj: claim("20Gi"), Old: claim("5Gi")},
		wantErr: `persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi`,
	}, {
		name:   "claim within bounds",
		ranges: []*corev1.LimitRange{claims},
		req:    createReq(claimsRes, claim("5Gi")),
	}, {
		name:   "pod updates are not checked",
		ranges: []*corev1.LimitRange{containerRange()},
		req: &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsRes, Namespace: "ns", Name: "p",
			Obj: quotaPod("p", rlist("cpu", "1"), nil), Old: quotaPod("p", rlist("cpu", "1"), nil)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &LimitRanger{Ranges: &rangeStore{cached: tt.ranges}, Prefix: rangePrefix}
			err := admitBoth(l, tt.req)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("want admitted, got %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || err.(apierrors.APIStatus).Status().Code != http.StatusForbidden {
				t.Fatalf("want 403, got %v", err)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("message:\n got %s\nwant %s", err, tt.wantErr)
			}
		})
	}
}

func TestLimitRangerPartialMerge(t *testing.T) {
	l := &LimitRanger{Ranges: &rangeStore{cached: []*corev1.LimitRange{containerRange()}}, Prefix: rangePrefix}
	pod := quotaPod("partial", rlist("cpu", "300m", "memory", "150Mi", "ephemeral-storage", "150Gi"), rlist("cpu", "300m"))
	if err := admitBoth(l, createReq(podsRes, pod)); err != nil {
		t.Fatal(err)
	}
	r := pod.Spec.Containers[0].Resources
	if diff := cmp.Diff(map[string]string{"cpu": "300m", "memory": "150Mi", "ephemeral-storage": "150Gi"}, quantities(r.Requests)); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"cpu": "300m", "memory": "500Mi", "ephemeral-storage": "500Gi"}, quantities(r.Limits)); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
}

// With no limit range in the cache, a live read finds one created a
// moment ago, and is reused for liveTTL.
func TestLimitRangerLiveLookup(t *testing.T) {
	store := &rangeStore{stored: []*corev1.LimitRange{containerRange()}}
	now := time.Unix(1000, 0)
	l := &LimitRanger{Ranges: store, Prefix: rangePrefix, now: func() time.Time { return now }}
	for range 3 {
		pod := quotaPod("p", nil, nil)
		if err := admitBoth(l, createReq(podsRes, pod)); err != nil {
			t.Fatal(err)
		}
		if got := pod.Spec.Containers[0].Resources.Requests.Cpu().String(); got != "100m" {
			t.Fatalf("cpu request = %s, want the live range's default 100m", got)
		}
	}
	if store.liveLists != 1 {
		t.Fatalf("live lists = %d, want 1", store.liveLists)
	}
	now = now.Add(liveTTL + time.Second)
	if err := admitBoth(l, createReq(podsRes, quotaPod("p", nil, nil))); err != nil {
		t.Fatal(err)
	}
	if store.liveLists != 2 {
		t.Fatalf("live lists = %d, want 2 after liveTTL", store.liveLists)
	}
}
