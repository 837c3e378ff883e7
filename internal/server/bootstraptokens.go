package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/bootstraptoken"
	"github.com/skiff-io/skiff/internal/storage"
)

// bootstrapTokens is the bootstrap token authenticator. It reads the
// token Secrets of kube-system from the watch cache in stores (filled as
// the API server builds its storage, before it serves a request), as
// upstream's reads them from an informer — and, unlike the service
// account token authenticator, never from etcd on a miss: anybody may
// send a token of the bootstrap form with a made-up id, and that must not
// cost an etcd read. So a Secret authenticates once the cache has seen it
// (milliseconds after it was written), and a Secret just deleted until
// the cache has seen the deletion.
func bootstrapTokens(stores map[string]storage.Interface, lg *slog.Logger) apiserver.Authenticator {
	prefix := apiserver.StorageKeyPrefix(corev1GVR("secrets"))
	return &bootstraptoken.Authenticator{
		Log: lg,
		Get: func(ctx context.Context, name string) (*corev1.Secret, error) {
			st := stores[prefix]
			if st == nil {
				return nil, fmt.Errorf("secrets are not served")
			}
			key := prefix + bootstraptoken.Namespace + "/" + name
			sec := &corev1.Secret{}
			err := st.Get(ctx, key, "0", sec)
			if errors.Is(err, storage.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("secret %s/%s: %w", bootstraptoken.Namespace, name, err)
			}
			return sec, nil
		},
	}
}
