package tokencmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
)

// List prints the bootstrap tokens in kubeadm's columns; a token Secret
// that does not parse is reported on errw and skipped, as kubeadm does.
func List(ctx context.Context, cfg Config, w, errw io.Writer) error {
	c, err := cfg.connect()
	if err != nil {
		return err
	}
	list, err := c.cs.CoreV1().Secrets(bootstraptoken.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(bootstraptoken.SecretType)).String(),
	})
	if err != nil {
		return fmt.Errorf("listing bootstrap tokens: %w", err)
	}
	var specs []bootstraptoken.Spec
	for i := range list.Items {
		s, err := bootstraptoken.FromSecret(&list.Items[i])
		if errors.Is(err, bootstraptoken.ErrNotToken) {
			continue
		}
		if err != nil {
			fmt.Fprintln(errw, "warning:", err)
			continue
		}
		specs = append(specs, s)
	}
	return printTokens(w, specs, cfg.now())
}

// printTokens writes kubeadm's table: TOKEN (all of it, as kubeadm), TTL
// (left at now: "<forever>", or "<invalid>" once expired), EXPIRES,
// USAGES, DESCRIPTION, EXTRA GROUPS; "<none>" for what is empty. Tokens
// are in the order of their ids.
func printTokens(w io.Writer, specs []bootstraptoken.Spec, now time.Time) error {
	sort.Slice(specs, func(i, j int) bool { return specs[i].Token.ID < specs[j].Token.ID })
	tw := tabwriter.NewWriter(w, 10, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS")
	none := func(s string) string {
		if s == "" {
			return "<none>"
		}
		return s
	}
	for _, s := range specs {
		ttl, expires := "<forever>", "<never>"
		if !s.Expires.IsZero() {
			ttl = duration.ShortHumanDuration(s.Expires.Sub(now))
			expires = s.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Token, ttl, expires,
			none(strings.Join(s.Usages, ",")), none(s.Description), none(strings.Join(s.ExtraGroups, ",")))
	}
	return tw.Flush()
}
