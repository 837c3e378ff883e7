package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/version"
)

// Version is what /version reports. The Kubernetes version is the API level
// skiff serves (the k8s.io/api release it is built on).
var Version = version.Info{
	Major:      "1",
	Minor:      "37",
	GitVersion: "v1.37.2+skiff",
	GoVersion:  runtime.Version(),
	Compiler:   runtime.Compiler,
	Platform:   runtime.GOOS + "/" + runtime.GOARCH,
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	v := Version
	writeJSON(w, http.StatusOK, &v)
}

// serveHealth serves /livez, /readyz and /healthz as upstream: "ok", or
// with ?verbose one line per check, and 500 listing the failed ones. A
// single check can be asked for by path (/readyz/etcd).
func (s *Server) serveHealth(name string, checks map[string]func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		only := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"+name), "/")
		exclude := map[string]bool{}
		for _, e := range r.URL.Query()["exclude"] {
			exclude[e] = true
		}
		var b strings.Builder
		failed := false
		b.WriteString("[+]ping ok\n")
		if name == "readyz" {
			select {
			case <-s.shutdownInitiated:
				failed = true
				b.WriteString("[-]shutdown failed: reason withheld\n")
			default:
				b.WriteString("[+]shutdown ok\n")
			}
		}
		found := only == "" || only == "ping"
		for _, n := range sortedKeys(checks) {
			if exclude[n] || (only != "" && only != n) {
				continue
			}
			found = true
			if err := checks[n](ctx); err != nil {
				failed = true
				fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", n)
				s.log.Debug("health check failed", "endpoint", name, "check", n, "err", err)
				continue
			}
			fmt.Fprintf(&b, "[+]%s ok\n", n)
		}
		if !found {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if failed {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "%s%s check failed\n", b.String(), name)
			return
		}
		if _, verbose := r.URL.Query()["verbose"]; verbose {
			fmt.Fprintf(w, "%s%s check passed\n", b.String(), name)
			return
		}
		fmt.Fprint(w, "ok")
	}
}
