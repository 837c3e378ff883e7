package apiserver

import (
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Where the service account issuer's OpenID Connect metadata is served
// (upstream's ServiceAccountIssuerDiscovery). Reading them takes
// authentication and the bootstrap role
// system:service-account-issuer-discovery, which every service account
// holds.
const (
	OpenIDDiscoveryPath = "/.well-known/openid-configuration"
	OpenIDKeySetPath    = "/openid/v1/jwks"
)

// serveDocument answers GET and HEAD with doc, cacheable for an hour as
// upstream's, and other methods with 405.
func serveDocument(contentType string, doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{}, r.Method))
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(doc)
		}
	})
}
