package tokencmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
)

// DefaultTTL is how long a token lives unless --ttl says otherwise, as
// kubeadm's.
const DefaultTTL = 24 * time.Hour

// Create makes a bootstrap token (usages authentication and signing, as
// kubeadm's) and prints a line about it and then, as the last line, its
// join string.
func Create(ctx context.Context, cfg Config, w io.Writer) error {
	if cfg.TTL < 0 {
		return fmt.Errorf("--ttl %v: can not be negative (0: the token never expires)", cfg.TTL)
	}
	for _, g := range cfg.Groups {
		if err := bootstraptoken.ValidateGroup(g); err != nil {
			return err
		}
	}
	c, err := cfg.connect()
	if err != nil {
		return err
	}
	// The CA before the token: a token is not left behind for a join
	// string that can not be made.
	bundle, err := c.caBundle(ctx)
	if err != nil {
		return fmt.Errorf("the cluster CA: %w", err)
	}
	spec := bootstraptoken.Spec{
		Description: cfg.Description,
		Usages:      []string{bootstraptoken.UsageAuthentication, bootstraptoken.UsageSigning},
		ExtraGroups: slices.Compact(slices.Sorted(slices.Values(cfg.Groups))),
	}
	if cfg.TTL > 0 {
		spec.Expires = cfg.now().Add(cfg.TTL).Truncate(time.Second)
	}
	secrets := c.cs.CoreV1().Secrets(bootstraptoken.Namespace)
	// A random id taken already (one in two billion) gets another.
	for attempt := 0; ; attempt++ {
		if spec.Token, err = newToken(cfg.Token); err != nil {
			return err
		}
		_, err = secrets.Create(ctx, spec.Secret(), metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) || cfg.Token != "" || attempt == 2 {
			break
		}
	}
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bootstrap token %q exists already", spec.Token.ID)
	}
	if err != nil {
		return fmt.Errorf("creating bootstrap token: %w", err)
	}
	c.mu.Lock()
	leaf := c.leaf
	c.mu.Unlock()
	ca := signingCA(bundle, leaf)
	expires := "never expires"
	if !spec.Expires.IsZero() {
		expires = "expires " + spec.Expires.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "bootstrap token %q created, %s; join string (CA %q):\n", spec.Token.ID, expires, ca.Subject.CommonName)
	fmt.Fprintln(w, bootstraptoken.Join(bootstraptoken.CAHash(ca), spec.Token))
	return nil
}

// newToken parses the token given, or makes one.
func newToken(given string) (bootstraptoken.Token, error) {
	if given == "" {
		return bootstraptoken.Generate()
	}
	return bootstraptoken.ParseToken(given)
}
