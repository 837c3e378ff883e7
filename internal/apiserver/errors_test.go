package apiserver

import (
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/storage"
)

// A continue token whose revision was compacted gets 410 with a token for
// the inconsistent rest in the Status's metadata, as upstream.
func TestStorageErrorExpiredContinue(t *testing.T) {
	err := storageError(fmt.Errorf("list /pods/: %w", &storage.ExpiredContinueError{Continue: "tok"}), schema.GroupResource{Resource: "pods"}, "")
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Code != http.StatusGone || st.Status().Reason != "Expired" || st.Status().ListMeta.Continue != "tok" {
		t.Fatalf("got %#v, want 410 Expired with continue %q", err, "tok")
	}
	plain := storageError(fmt.Errorf("watch: %w", storage.ErrExpired), schema.GroupResource{Resource: "pods"}, "")
	if !apierrors.IsResourceExpired(plain) || plain.(apierrors.APIStatus).Status().ListMeta.Continue != "" {
		t.Fatalf("a plain expiry: %v, want 410 without a token", plain)
	}
}
