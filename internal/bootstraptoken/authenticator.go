package bootstraptoken

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// GetSecret returns the Secret name in kube-system, or nil and no error
// when there is none.
type GetSecret func(ctx context.Context, name string) (*corev1.Secret, error)

// Authenticator accepts bootstrap tokens as bearer tokens, as upstream's
// bootstrap token authenticator: a token of the form <id>.<secret>
// authenticates as user system:bootstrap:<id> in group
// system:bootstrappers, the Secret's auth-extra-groups and
// system:authenticated when the Secret bootstrap-token-<id> in
// kube-system
//
//   - is of type bootstrap.kubernetes.io/token and is not being deleted,
//   - holds the token's secret (compared in constant time) and id,
//   - has usage-bootstrap-authentication "true",
//   - has not expired (an expiration that does not parse counts as
//     expired),
//   - lists only extra groups under system:bootstrappers:.
//
// A bearer token of another form is not its to judge (ok false, for the
// next authenticator). A token of its form that fails a check is not
// authenticated either (ok false, no error): the client gets 401 and no
// hint of which check failed; the reason is logged at debug level.
type Authenticator struct {
	Get GetSecret
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log receives the reasons tokens are refused (slog.Default() when
	// nil).
	Log *slog.Logger
}

func (a *Authenticator) AuthenticateRequest(r *http.Request) (*apiserver.User, bool, error) {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false, nil
	}
	tok, err := ParseToken(strings.TrimSpace(bearer))
	if err != nil {
		return nil, false, nil
	}
	name := SecretName(tok.ID)
	refuse := func(reason string, args ...any) (*apiserver.User, bool, error) {
		log := a.Log
		if log == nil {
			log = slog.Default()
		}
		log.Debug("bootstrap token refused", append([]any{"secret", Namespace + "/" + name, "reason", reason}, args...)...)
		return nil, false, nil
	}
	sec, err := a.Get(r.Context(), name)
	if err != nil {
		return nil, false, err
	}
	if sec == nil {
		return refuse("no such secret")
	}
	if sec.DeletionTimestamp != nil {
		return refuse("secret is being deleted")
	}
	if sec.Type != SecretType {
		return refuse("secret is not of type "+string(SecretType), "type", sec.Type)
	}
	if subtle.ConstantTimeCompare(sec.Data[KeySecret], []byte(tok.Secret)) != 1 {
		return refuse("wrong token secret")
	}
	spec, err := FromSecret(sec)
	if err != nil {
		return refuse("malformed secret", "err", err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if spec.Expired(now()) {
		return refuse("expired", "expiration", spec.Expires)
	}
	if !spec.HasUsage(UsageAuthentication) {
		return refuse("not marked " + UsagePrefix + UsageAuthentication + "=true")
	}
	return &apiserver.User{
		Name:   UserPrefix + tok.ID,
		Groups: append(spec.Groups(), "system:authenticated"),
	}, true, nil
}
