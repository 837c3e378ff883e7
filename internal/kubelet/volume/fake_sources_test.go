package volume

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeSources serves configMaps, secrets and claims from maps keyed
// "ns/name" and PVs by name, and mints tokens "token-1", "token-2"... that
// live ttl from clock().
type fakeSources struct {
	mu         sync.Mutex
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	claims     map[string]*v1.PersistentVolumeClaim
	pvs        map[string]*v1.PersistentVolume
	claimGets  int
	clock      func() time.Time
	ttl        time.Duration // 0: as requested
	tokenErr   error
	requests   []*authenticationv1.TokenRequest
	accounts   []string
	bundles    map[string]*certificatesv1.ClusterTrustBundle
}

func newFakeSources() *fakeSources {
	return &fakeSources{
		configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{},
		claims: map[string]*v1.PersistentVolumeClaim{}, pvs: map[string]*v1.PersistentVolume{},
		bundles: map[string]*certificatesv1.ClusterTrustBundle{},
		clock:   time.Now,
	}
}

func (f *fakeSources) setConfigMap(ns, name string, data map[string]string, binary map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configMaps[ns+"/"+name] = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data, BinaryData: binary}
}

func (f *fakeSources) setSecret(ns, name string, data map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[ns+"/"+name] = &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func (f *fakeSources) ConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cm, ok := f.configMaps[ns+"/"+name]
	if !ok {
		// As the API server words it; the manager must reword it.
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	return cm.DeepCopy(), nil
}

func (f *fakeSources) Secret(_ context.Context, ns, name string) (*v1.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.secrets[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	return s.DeepCopy(), nil
}

// bind stores a claim ns/name bound to pv and pv bound back to it, as the
// PV controller leaves them.
func (f *fakeSources) bind(ns, name string, pv *v1.PersistentVolume) {
	uid := types.UID("uid-" + ns + "-" + name)
	f.setClaim(&v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: pv.Name},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	})
	pv = pv.DeepCopy()
	pv.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: name, UID: uid}
	f.setPV(pv)
}

func (f *fakeSources) setClaim(pvc *v1.PersistentVolumeClaim) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims[pvc.Namespace+"/"+pvc.Name] = pvc.DeepCopy()
}

func (f *fakeSources) setPV(pv *v1.PersistentVolume) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pvs[pv.Name] = pv.DeepCopy()
}

func (f *fakeSources) PersistentVolumeClaim(_ context.Context, ns, name string) (*v1.PersistentVolumeClaim, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claimGets++
	pvc, ok := f.claims[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, name)
	}
	return pvc.DeepCopy(), nil
}

func (f *fakeSources) PersistentVolume(_ context.Context, name string) (*v1.PersistentVolume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pv, ok := f.pvs[name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumes"}, name)
	}
	return pv.DeepCopy(), nil
}

func (f *fakeSources) Token(_ context.Context, ns, sa string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokenErr != nil {
		return nil, f.tokenErr
	}
	f.requests = append(f.requests, req.DeepCopy())
	f.accounts = append(f.accounts, ns+"/"+sa)
	ttl := f.ttl
	if ttl == 0 {
		ttl = time.Duration(*req.Spec.ExpirationSeconds) * time.Second
	}
	out := req.DeepCopy()
	out.Status = authenticationv1.TokenRequestStatus{
		Token:               fmt.Sprintf("token-%d", len(f.requests)),
		ExpirationTimestamp: metav1.NewTime(f.clock().Add(ttl)),
	}
	return out, nil
}

func (f *fakeSources) setBundle(name, signer string, lbls map[string]string, pems ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bundles[name] = &certificatesv1.ClusterTrustBundle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: strings.Join(pems, "")},
	}
}

func (f *fakeSources) ClusterTrustBundle(_ context.Context, name string) (*certificatesv1.ClusterTrustBundle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bundles[name]
	if !ok {
		return nil, apierrors.NewNotFound(certificatesv1.Resource("clustertrustbundles"), name)
	}
	return b.DeepCopy(), nil
}

// ClusterTrustBundles returns every bundle of the signer, whatever the
// selector says, so that the manager's own filter is tested too.
func (f *fakeSources) ClusterTrustBundles(_ context.Context, signer string, _ labels.Selector) ([]certificatesv1.ClusterTrustBundle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []certificatesv1.ClusterTrustBundle
	for _, b := range f.bundles {
		if b.Spec.SignerName == signer {
			out = append(out, *b.DeepCopy())
		}
	}
	return out, nil
}

func (f *fakeSources) tokenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// newTestManager returns a Manager on a temp root with tmpfs off (tests
// that want tmpfs turn it on) and a node of 4 CPUs and 8Gi.
func newTestManager(t *testing.T, src Sources) *Manager {
	t.Helper()
	m := New(t.TempDir(), src, func() v1.ResourceList {
		return v1.ResourceList{
			v1.ResourceCPU:    resource.MustParse("4"),
			v1.ResourceMemory: resource.MustParse("8Gi"),
		}
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.tmpfs = false
	return m
}

func testPod(vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": "say \"hi\""},
		},
		Spec: v1.PodSpec{
			ServiceAccountName: "runner",
			Volumes:            vols,
			Containers: []v1.Container{{
				Name: "app",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")},
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
				},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }
