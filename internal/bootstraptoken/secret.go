package bootstraptoken

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Secret that holds a token, as k8s.io/cluster-bootstrap/token/api
// lays it out: kube-system/bootstrap-token-<id>, of type
// bootstrap.kubernetes.io/token, its fields in data.
const (
	Namespace    = metav1.NamespaceSystem
	SecretType   = corev1.SecretTypeBootstrapToken
	SecretPrefix = "bootstrap-token-"

	KeyID          = "token-id"
	KeySecret      = "token-secret"
	KeyExpiration  = "expiration" // RFC3339; absent: never expires
	KeyDescription = "description"
	KeyExtraGroups = "auth-extra-groups" // comma-separated
	// UsagePrefix + usage is "true" for each usage the token has.
	UsagePrefix = "usage-bootstrap-"
)

// Usages upstream knows.
const (
	// UsageAuthentication: the token is a bearer credential (Authenticator).
	UsageAuthentication = "authentication"
	// UsageSigning: the token signs kube-public/cluster-info (upstream's
	// bootstrap signer; skiff does not sign it yet).
	UsageSigning = "signing"
)

// Who a token authenticates as.
const (
	UserPrefix = "system:bootstrap:"
	Group      = "system:bootstrappers"
)

// extraGroupPattern is upstream's BootstrapGroupPattern.
var extraGroupPattern = regexp.MustCompile(`\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`)

// SecretName is the name of the Secret of token id.
func SecretName(id string) string { return SecretPrefix + id }

// ValidateGroup checks an extra group: it must be within
// system:bootstrappers: ("system:bootstrappers:<[a-z0-9:-]>").
func ValidateGroup(g string) error {
	if !extraGroupPattern.MatchString(g) {
		return fmt.Errorf("bootstrap token group %q: want system:bootstrappers:<name> (lowercase letters, digits, ':' and '-')", g)
	}
	return nil
}

// Spec is what a token's Secret says.
type Spec struct {
	Token       Token
	Description string
	// Expires is when the token stops working; zero: never.
	Expires time.Time
	// Usages are UsageAuthentication, UsageSigning or others, sorted.
	Usages []string
	// ExtraGroups are groups beyond Group the token authenticates in,
	// each passing ValidateGroup.
	ExtraGroups []string
}

// Expired says whether the token has expired at now.
func (s Spec) Expired(now time.Time) bool { return !s.Expires.IsZero() && !now.Before(s.Expires) }

// HasUsage says whether the token may be used for u.
func (s Spec) HasUsage(u string) bool { return slices.Contains(s.Usages, u) }

// Groups are the groups the token authenticates in: Group and the extra
// ones, sorted and without duplicates (as upstream), without
// system:authenticated.
func (s Spec) Groups() []string {
	gs := append([]string{Group}, s.ExtraGroups...)
	slices.Sort(gs)
	return slices.Compact(gs)
}

// Secret is the Secret that holds s. Expires is written in UTC to the
// second.
func (s Spec) Secret() *corev1.Secret {
	data := map[string][]byte{
		KeyID:     []byte(s.Token.ID),
		KeySecret: []byte(s.Token.Secret),
	}
	if s.Description != "" {
		data[KeyDescription] = []byte(s.Description)
	}
	if !s.Expires.IsZero() {
		data[KeyExpiration] = []byte(s.Expires.UTC().Format(time.RFC3339))
	}
	if len(s.ExtraGroups) > 0 {
		data[KeyExtraGroups] = []byte(strings.Join(s.ExtraGroups, ","))
	}
	for _, u := range s.Usages {
		data[UsagePrefix+u] = []byte("true")
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName(s.Token.ID), Namespace: Namespace},
		Type:       SecretType,
		Data:       data,
	}
}

// ErrNotToken is returned by FromSecret for a Secret that is not a
// bootstrap token's (another type, or not in kube-system).
var ErrNotToken = errors.New("not a bootstrap token Secret")

// FromSecret reads a token's Secret. It fails for a Secret of another
// type (ErrNotToken) and for one whose fields upstream would refuse: an
// id that does not match the name, a malformed secret, an expiration
// that is not RFC3339, an extra group outside system:bootstrappers:.
// The errors never quote the token's secret.
func FromSecret(sec *corev1.Secret) (Spec, error) {
	if sec.Type != SecretType || sec.Namespace != Namespace {
		return Spec{}, fmt.Errorf("secret %s/%s: %w", sec.Namespace, sec.Name, ErrNotToken)
	}
	fail := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("bootstrap token secret %s/%s: %s", sec.Namespace, sec.Name, fmt.Sprintf(format, args...))
	}
	id := string(sec.Data[KeyID])
	if !ValidID(id) || sec.Name != SecretName(id) {
		return fail("%s %q does not match the name", KeyID, id)
	}
	s := Spec{Token: Token{ID: id, Secret: string(sec.Data[KeySecret])}, Description: string(sec.Data[KeyDescription])}
	if !valid(s.Token.Secret, SecretLength) {
		return fail("%s is not [a-z0-9]{16}", KeySecret)
	}
	if v, ok := sec.Data[KeyExpiration]; ok {
		t, err := time.Parse(time.RFC3339, string(v))
		if err != nil {
			return fail("%s %q is not an RFC3339 time", KeyExpiration, v)
		}
		s.Expires = t
	}
	if v := string(sec.Data[KeyExtraGroups]); v != "" {
		for _, g := range strings.Split(v, ",") {
			if err := ValidateGroup(g); err != nil {
				return fail("%v", err)
			}
			s.ExtraGroups = append(s.ExtraGroups, g)
		}
	}
	for k, v := range sec.Data {
		if u, ok := strings.CutPrefix(k, UsagePrefix); ok && string(v) == "true" {
			s.Usages = append(s.Usages, u)
		}
	}
	slices.Sort(s.Usages)
	return s, nil
}
