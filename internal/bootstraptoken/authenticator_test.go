package bootstraptoken

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
)

func TestAuthenticator(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := func() *corev1.Secret {
		return Spec{Token: testToken, Expires: now.Add(time.Hour), Usages: []string{UsageAuthentication, UsageSigning},
			ExtraGroups: []string{"system:bootstrappers:workers"}}.Secret()
	}
	tests := []struct {
		name   string
		bearer string // default testToken
		secret func() *corev1.Secret
		getErr error
		want   *apiserver.User
		// notOurs: ok false without a log line (another authenticator's
		// token); otherwise a refusal logs reason.
		notOurs bool
		reason  string
		wantErr bool
	}{{
		name: "valid", secret: valid,
		want: &apiserver.User{Name: "system:bootstrap:abcdef",
			Groups: []string{"system:bootstrappers", "system:bootstrappers:workers", "system:authenticated"}},
	}, {
		name: "valid, never expires, no extra groups",
		secret: func() *corev1.Secret {
			return Spec{Token: testToken, Usages: []string{UsageAuthentication}}.Secret()
		},
		want: &apiserver.User{Name: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers", "system:authenticated"}},
	}, {
		name: "upper case: not of the form", bearer: "abcdef.0123456789abcdeX", secret: valid, notOurs: true,
	}, {
		name: "wrong secret", bearer: "abcdef.aaaaaaaaaaaaaaaa", secret: valid, reason: "wrong token secret",
	}, {
		name: "expired", secret: func() *corev1.Secret {
			s := valid()
			s.Data[KeyExpiration] = []byte(now.Add(-time.Second).Format(time.RFC3339))
			return s
		}, reason: "expired",
	}, {
		name: "expires now", secret: func() *corev1.Secret {
			s := valid()
			s.Data[KeyExpiration] = []byte(now.Format(time.RFC3339))
			return s
		}, reason: "expired",
	}, {
		name: "expiration does not parse", secret: func() *corev1.Secret {
			s := valid()
			s.Data[KeyExpiration] = []byte("next week")
			return s
		}, reason: "malformed secret",
	}, {
		name: "usage false", secret: func() *corev1.Secret {
			s := valid()
			s.Data[UsagePrefix+UsageAuthentication] = []byte("false")
			return s
		}, reason: "not marked usage-bootstrap-authentication=true",
	}, {
		name: "no usage", secret: func() *corev1.Secret {
			s := valid()
			delete(s.Data, UsagePrefix+UsageAuthentication)
			return s
		}, reason: "not marked usage-bootstrap-authentication=true",
	}, {
		name: "bad extra group", secret: func() *corev1.Secret {
			s := valid()
			s.Data[KeyExtraGroups] = []byte("system:bootstrappers:workers,system:masters")
			return s
		}, reason: "malformed secret",
	}, {
		name: "deleted secret", secret: func() *corev1.Secret { return nil }, reason: "no such secret",
	}, {
		name: "being deleted", secret: func() *corev1.Secret {
			s := valid()
			s.DeletionTimestamp = &metav1.Time{Time: now}
			return s
		}, reason: "being deleted",
	}, {
		name: "wrong type", secret: func() *corev1.Secret {
			s := valid()
			s.Type = corev1.SecretTypeOpaque
			return s
		}, reason: "not of type",
	}, {
		name: "id key does not match", secret: func() *corev1.Secret {
			s := valid()
			s.Data[KeyID] = []byte("zzzzzz")
			return s
		}, reason: "malformed secret",
	}, {
		name: "storage error", secret: valid, getErr: errors.New("etcd is down"), wantErr: true,
	}, {
		name: "a JWT is not ours", bearer: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", secret: valid, notOurs: true,
	}, {
		name: "no bearer", bearer: "-", secret: valid, notOurs: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			var asked []string
			a := &Authenticator{
				Get: func(_ context.Context, name string) (*corev1.Secret, error) {
					asked = append(asked, name)
					return tt.secret(), tt.getErr
				},
				Now: func() time.Time { return now },
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			r := httptest.NewRequest("GET", "/api", nil)
			switch tt.bearer {
			case "":
				r.Header.Set("Authorization", "Bearer "+testToken.String())
			case "-":
			default:
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			u, ok, err := a.AuthenticateRequest(r)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v, %v", u, ok)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v: a refusal is ok false, never an error", err)
			}
			if tt.want != nil {
				if !ok {
					t.Fatalf("not authenticated; log:\n%s", logs.String())
				}
				if d := cmp.Diff(tt.want, u); d != "" {
					t.Errorf("user (-want +got):\n%s", d)
				}
				if d := cmp.Diff([]string{"bootstrap-token-abcdef"}, asked); d != "" {
					t.Errorf("secrets read (-want +got):\n%s", d)
				}
				return
			}
			if ok || u != nil {
				t.Fatalf("authenticated as %+v", u)
			}
			if tt.notOurs {
				if logs.Len() != 0 {
					t.Errorf("logged for a token not of its form:\n%s", logs.String())
				}
				return
			}
			if !strings.Contains(logs.String(), tt.reason) || !strings.Contains(logs.String(), "level=DEBUG") {
				t.Errorf("log %q does not give the reason %q at debug level", logs.String(), tt.reason)
			}
			if strings.Contains(logs.String(), testToken.Secret) || strings.Contains(logs.String(), "aaaaaaaaaaaaaaaa") {
				t.Errorf("the log quotes a secret: %s", logs.String())
			}
		})
	}
}
