package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/pki"
)

// `skiff certificate status|rotate-ca` talks to the running server
// through these endpoints, on the API port, for system:masters only (as
// `skiff secrets-encrypt`): the server holds the CA and every consumer
// of the trust, so only it can replace the CA without a window.
const (
	certStatusPath   = "/v1-skiff/certificates/status"
	certRotateCAPath = "/v1-skiff/certificates/rotate-ca"
)

// DefaultCAOverlap is how long both CAs are trusted after a rotation
// unless --overlap says otherwise: time for every client given the old
// CA (kubeconfigs handed out, pods' kube-root-ca.crt, remote agents) to
// pick up the new one.
const DefaultCAOverlap = 7 * 24 * time.Hour

// CertificateStatus is what the endpoints answer and `skiff certificate
// status -o json` prints.
type CertificateStatus struct {
	// CA signs the certificates; Trusted are the CAs whose certificates
	// are accepted (CA first). OverlapEnds is when the previous CA stops
	// being trusted, during a rotation's overlap.
	CA          CertificateInfo   `json:"ca"`
	Trusted     []CertificateInfo `json:"trusted"`
	OverlapEnds *time.Time        `json:"overlapEnds,omitempty"`
	// Certificates are the leaves the server keeps and renews.
	Certificates []CertificateInfo `json:"certificates"`
}

// CertificateInfo names one certificate and when it expires (and, for a
// leaf, when it is renewed).
type CertificateInfo struct {
	Name     string     `json:"name"`
	NotAfter time.Time  `json:"notAfter"`
	RenewAt  *time.Time `json:"renewAt,omitempty"`
}

func (r *certRenewer) status() *CertificateStatus {
	ca := r.bundle.CA()
	st := &CertificateStatus{CA: CertificateInfo{Name: ca.Current.Subject.CommonName, NotAfter: ca.Current.NotAfter}}
	for _, c := range ca.Trusted {
		st.Trusted = append(st.Trusted, CertificateInfo{Name: c.Subject.CommonName, NotAfter: c.NotAfter})
	}
	if !ca.OverlapEnds.IsZero() {
		st.OverlapEnds = &ca.OverlapEnds
	}
	for _, l := range r.bundle.Leaves() {
		ci := CertificateInfo{Name: l.Name, NotAfter: l.NotAfter}
		if !l.RenewAt.IsZero() {
			ci.RenewAt = &l.RenewAt
		}
		st.Certificates = append(st.Certificates, ci)
	}
	return st
}

// handler serves the /v1-skiff/certificates/ endpoints and hands every
// other request to next.
func (r *certRenewer) handler(next http.Handler, authn apiserver.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.URL.Path, "/v1-skiff/certificates/") {
			next.ServeHTTP(w, req)
			return
		}
		if !mastersOnly(authn, w, req, "manage the cluster's certificates") {
			return
		}
		switch {
		case req.URL.Path == certStatusPath && req.Method == http.MethodGet:
		case req.URL.Path == certRotateCAPath && req.Method == http.MethodPost:
			overlap := DefaultCAOverlap
			if v := req.URL.Query().Get("overlap"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Second {
					http.Error(w, fmt.Sprintf("overlap %q: want a duration of a second or more, such as 24h", v), http.StatusBadRequest)
					return
				}
				overlap = d
			}
			if _, err := r.rotateCA(overlap); err != nil {
				code := http.StatusInternalServerError
				if errors.Is(err, pki.ErrRotationInProgress) {
					code = http.StatusConflict
				}
				http.Error(w, err.Error(), code)
				return
			}
		case req.URL.Path == certStatusPath || req.URL.Path == certRotateCAPath:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		default:
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.status())
	})
}

// CertificateConfig is `skiff certificate`'s configuration.
type CertificateConfig struct {
	// DataDir is the server's data dir; its admin.kubeconfig is used
	// unless Kubeconfig names another (of a system:masters user).
	DataDir    string
	Kubeconfig string
	// Output is "" (text) or "json".
	Output string
	// Overlap is how long rotate-ca trusts both CAs.
	Overlap time.Duration
}

// CertificateStatusCmd prints the CA in force and when each certificate
// the server keeps expires and is renewed.
func CertificateStatusCmd(ctx context.Context, cfg CertificateConfig, w io.Writer) error {
	st, err := callCertificateEndpoint(ctx, cfg, http.MethodGet, certStatusPath)
	if err != nil {
		return err
	}
	return printCertificateStatus(w, cfg.Output, st)
}

// CertificateRotateCA has the server replace the cluster CA, trusting
// both for cfg.Overlap, and prints the outcome.
func CertificateRotateCA(ctx context.Context, cfg CertificateConfig, w io.Writer) error {
	path := certRotateCAPath
	if cfg.Overlap != 0 {
		path += "?overlap=" + url.QueryEscape(cfg.Overlap.String())
	}
	st, err := callCertificateEndpoint(ctx, cfg, http.MethodPost, path)
	if err != nil {
		return err
	}
	if cfg.Output != "json" {
		fmt.Fprintf(w, "New CA: %s\n", st.CA.Name)
		if st.OverlapEnds != nil {
			fmt.Fprintf(w, "Both CAs are trusted until %s; then certificates of the previous CA are refused.\n", st.OverlapEnds.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "Every certificate the server keeps was reissued; give clients the new CA bundle (ca.crt, admin.kubeconfig) before then.\n\n")
	}
	return printCertificateStatus(w, cfg.Output, st)
}

func callCertificateEndpoint(ctx context.Context, cfg CertificateConfig, method, path string) (*CertificateStatus, error) {
	if cfg.Output != "" && cfg.Output != "json" {
		return nil, fmt.Errorf("--output %q: want json or nothing", cfg.Output)
	}
	st := &CertificateStatus{}
	if err := callSkiffEndpoint(ctx, cfg.DataDir, cfg.Kubeconfig, method, path, st); err != nil {
		return nil, err
	}
	return st, nil
}

func printCertificateStatus(w io.Writer, output string, st *CertificateStatus) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	day := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	fmt.Fprintf(w, "CA: %s (expires %s)\n", st.CA.Name, day(st.CA.NotAfter))
	names := make([]string, len(st.Trusted))
	for i, c := range st.Trusted {
		names[i] = c.Name
	}
	fmt.Fprintf(w, "Trusted CAs: %s\n", strings.Join(names, ", "))
	if st.OverlapEnds != nil {
		fmt.Fprintf(w, "Overlap ends: %s\n", day(*st.OverlapEnds))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "\nCERTIFICATE\tEXPIRES\tRENEWED AT")
	for _, c := range st.Certificates {
		renew := "-"
		if c.RenewAt != nil {
			renew = day(*c.RenewAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, day(c.NotAfter), renew)
	}
	return tw.Flush()
}
