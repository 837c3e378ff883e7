package volume

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	// defaultTokenSeconds is the API's default expirationSeconds.
	defaultTokenSeconds = 3600
	// tokenMaxAge forces a refresh of a token older than a day, as
	// upstream's token manager does, whatever its lifetime.
	tokenMaxAge = 24 * time.Hour
)

// tokenKey identifies one projected token file of one pod.
type tokenKey struct {
	pod    types.UID
	volume string
	path   string
}

type cachedToken struct {
	token   string
	fetched time.Time
	expires time.Time
}

// stale reports whether the token should be replaced: 80% of its lifetime
// (as the API server granted it) has passed, or it is older than a day.
func (t cachedToken) stale(now time.Time) bool {
	life := t.expires.Sub(t.fetched)
	return !now.Before(t.fetched.Add(life*8/10)) || now.Sub(t.fetched) > tokenMaxAge
}

// token returns the pod's service account token for a projected source,
// from the cache while it is fresh. The token is bound to the pod (the
// BoundObjectRef is the pod's name and UID), so it dies with the pod. When
// a refresh fails but the cached token has not expired yet, the cached one
// is used and the failure only logged.
func (m *Manager) token(ctx context.Context, pod *v1.Pod, volume string, p *v1.ServiceAccountTokenProjection) (string, error) {
	key := tokenKey{pod: pod.UID, volume: volume, path: p.Path}
	now := m.now()
	m.mu.Lock()
	cached, ok := m.tokens[key]
	m.mu.Unlock()
	if ok && !cached.stale(now) {
		return cached.token, nil
	}

	seconds := int64(defaultTokenSeconds)
	if p.ExpirationSeconds != nil {
		seconds = *p.ExpirationSeconds
	}
	var auds []string
	if p.Audience != "" {
		auds = []string{p.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         auds,
			ExpirationSeconds: &seconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				APIVersion: "v1",
				Kind:       "Pod",
				Name:       pod.Name,
				UID:        pod.UID,
			},
		},
	}
	tr, err := m.src.Token(ctx, pod.Namespace, sa, req)
	if err == nil && (tr == nil || tr.Status.Token == "") {
		err = errors.New("empty token in TokenRequest status")
	}
	if err != nil {
		if ok && now.Before(cached.expires) {
			m.log.Warn("service account token refresh failed; keeping the current token",
				"pod", pod.Namespace+"/"+pod.Name, "volume", volume, "err", err)
			return cached.token, nil
		}
		return "", fmt.Errorf("failed to fetch token: %w", err)
	}
	expires := tr.Status.ExpirationTimestamp.Time
	if expires.IsZero() || !expires.After(now) {
		expires = now.Add(time.Duration(seconds) * time.Second)
	}
	m.mu.Lock()
	m.tokens[key] = cachedToken{token: tr.Status.Token, fetched: now, expires: expires}
	m.mu.Unlock()
	return tr.Status.Token, nil
}

func (m *Manager) forgetTokens(pod types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.tokens {
		if k.pod == pod {
			delete(m.tokens, k)
		}
	}
}
