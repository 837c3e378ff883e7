package tokencmd

import (
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
)

// Delete deletes the bootstrap tokens named by id, by id.secret (or by
// join string), in
// order, saying so for each; it stops at the first that fails (a token
// that does not exist, say). Every argument is checked before any token is
// deleted.
func Delete(ctx context.Context, cfg Config, tokens []string, w io.Writer) error {
	if len(tokens) == 0 {
		return fmt.Errorf("no token given: want a token id ([a-z0-9]{6}) or a token ([a-z0-9]{6}.[a-z0-9]{16})")
	}
	ids := make([]string, len(tokens))
	for i, arg := range tokens {
		id, ok := tokenID(arg)
		if !ok {
			// Not quoted: it may be a mistyped secret.
			return fmt.Errorf("argument %d: want a token id ([a-z0-9]{6}) or a token ([a-z0-9]{6}.[a-z0-9]{16})", i+1)
		}
		ids[i] = id
	}
	c, err := cfg.connect()
	if err != nil {
		return err
	}
	secrets := c.cs.CoreV1().Secrets(bootstraptoken.Namespace)
	for _, id := range ids {
		err := secrets.Delete(ctx, bootstraptoken.SecretName(id), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("bootstrap token %q not found", id)
		}
		if err != nil {
			return fmt.Errorf("deleting bootstrap token %q: %w", id, err)
		}
		fmt.Fprintf(w, "bootstrap token %q deleted\n", id)
	}
	return nil
}

// tokenID is the id of a token given as id, id.secret or join string.
func tokenID(arg string) (string, bool) {
	if bootstraptoken.ValidID(arg) {
		return arg, true
	}
	if t, err := bootstraptoken.ParseToken(arg); err == nil {
		return t.ID, true
	}
	if _, t, err := bootstraptoken.ParseJoin(arg); err == nil {
		return t.ID, true
	}
	return "", false
}
