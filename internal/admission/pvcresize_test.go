package admission

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// classStore is a storageclasses store (Get only): cached answers reads
// at resourceVersion "0", stored every read; err, when set, fails them
// all.
type classStore struct {
	storage.Interface
	cached, stored map[string]*storagev1.StorageClass
	err            error
}

func (s classStore) Get(_ context.Context, key, rv string, out runtime.Object) error {
	if s.err != nil {
		return s.err
	}
	from := s.stored
	if rv == "0" {
		from = s.cached
	}
	c, ok := from[key]
	if !ok {
		return storage.ErrNotFound
	}
	c.DeepCopyInto(out.(*storagev1.StorageClass))
	return nil
}

func TestPersistentVolumeClaimResize(t *testing.T) {
	const prefix = "/registry/storage.k8s.io/storageclasses/"
	var (
		claimsR = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "persistentvolumeclaims", Namespaced: true}
		podsR   = &registry.Resource{GroupVersion: schema.GroupVersion{Version: "v1"}, Name: "pods", Namespaced: true}
	)
	sc := func(name string, allow *bool) *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "skiff.io/local-path", AllowVolumeExpansion: allow}
	}
	classes := map[string]*storagev1.StorageClass{
		prefix + "grow":    sc("grow", ptr.To(true)),
		prefix + "fixed":   sc("fixed", ptr.To(false)),
		prefix + "unset":   sc("unset", nil),
		prefix + "grow-v2": sc("grow-v2", ptr.To(true)),
	}
	// "late" is in etcd but not yet in the watch cache.
	stored := map[string]*storagev1.StorageClass{prefix + "late": sc("late", ptr.To(true))}
	for k, v := range classes {
		stored[k] = v
	}
	p := &PersistentVolumeClaimResize{Classes: classStore{cached: classes, stored: stored}, Prefix: prefix}

	claim := func(size string, phase corev1.PersistentVolumeClaimPhase, class string, mut ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			},
			Status: corev1.PersistentVolumeClaimStatus{Phase: phase},
		}
		if class != "" {
			c.Spec.StorageClassName = ptr.To(class)
		}
		for _, m := range mut {
			m(c)
		}
		return c
	}
	beta := func(class string) func(*corev1.PersistentVolumeClaim) {
		return func(c *corev1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{betaClaimClass: class}
		}
	}
	update := func(old, obj *corev1.PersistentVolumeClaim) apiserver.AdmissionRequest {
		return apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: claimsR, Namespace: "team", Name: "data", Obj: obj, Old: old}
	}
	const (
		unbound    = `persistentvolumeclaims "data" is forbidden: Only bound persistent volume claims can be expanded`
		notAllowed = `persistentvolumeclaims "data" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize`
	)
	bound := corev1.ClaimBound

	cases := []struct {
		name string
		req  apiserver.AdmissionRequest
		want string // "" allowed
	}{
		{"grow with an expandable class", update(claim("1Gi", bound, "grow"), claim("2Gi", bound, "grow")), ""},
		{"grow by a smaller unit", update(claim("1Gi", bound, "fixed"), claim("1025Mi", bound, "fixed")), notAllowed},
		{"same size", update(claim("1Gi", bound, "fixed"), claim("1024Mi", bound, "fixed")), ""},
		{"shrink is validation's", update(claim("2Gi", bound, "fixed"), claim("1Gi", bound, "fixed")), ""},
		{"grow unbound", update(claim("1Gi", corev1.ClaimPending, "grow"), claim("2Gi", corev1.ClaimPending, "grow")), unbound},
		{"grow lost", update(claim("1Gi", corev1.ClaimLost, "grow"), claim("2Gi", bound, "grow")), unbound},
		{"class forbids", update(claim("1Gi", bound, "fixed"), claim("2Gi", bound, "fixed")), notAllowed},
		{"class does not say", update(claim("1Gi", bound, "unset"), claim("2Gi", bound, "unset")), notAllowed},
		{"class missing", update(claim("1Gi", bound, "gone"), claim("2Gi", bound, "gone")), notAllowed},
		{"class not cached yet", update(claim("1Gi", bound, "late"), claim("2Gi", bound, "late")), ""},
		{"no class", update(claim("1Gi", bound, ""), claim("2Gi", bound, "")), notAllowed},
		{"empty class", update(claim("1Gi", bound, "", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("") }),
			claim("2Gi", bound, "", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("") })), notAllowed},
		{"class changed", update(claim("1Gi", bound, "grow"), claim("2Gi", bound, "grow-v2")), notAllowed},
		{"beta annotation", update(claim("1Gi", bound, "", beta("grow")), claim("2Gi", bound, "", beta("grow"))), ""},
		{"beta annotation wins", update(claim("1Gi", bound, "grow", beta("fixed")), claim("2Gi", bound, "grow", beta("fixed"))), notAllowed},
		{"status write", func() apiserver.AdmissionRequest {
			r := update(claim("1Gi", corev1.ClaimPending, "fixed"), claim("2Gi", corev1.ClaimPending, "fixed"))
			r.Sub = "status"
			return r
		}(), ""},
		{"create", apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: claimsR, Namespace: "team", Obj: claim("2Gi", "", "fixed")}, ""},
		{"other resource", apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: podsR, Namespace: "team", Name: "data",
			Obj: claim("2Gi", "", "fixed"), Old: claim("1Gi", "", "fixed")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := p.Admit(context.Background(), &c.req)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
			case err == nil:
				t.Fatalf("allowed, want %q", c.want)
			case err.Error() != c.want:
				t.Fatalf("error %q, want %q", err, c.want)
			case !apierrors.IsForbidden(err):
				t.Fatalf("error %v is not 403 Forbidden", err)
			}
		})
	}

	t.Run("store failure", func(t *testing.T) {
		p := &PersistentVolumeClaimResize{Classes: classStore{err: errors.New("etcd down")}, Prefix: prefix}
		req := update(claim("1Gi", bound, "grow"), claim("2Gi", bound, "grow"))
		err := p.Admit(context.Background(), &req)
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Code != http.StatusInternalServerError || !strings.Contains(err.Error(), "etcd down") {
			t.Fatalf("error %v, want a 500 carrying the store's error", err)
		}
	})
}
