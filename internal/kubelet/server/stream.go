package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamFlags are the kubelet's stream query parameters. The kubelet's own
// names are input/output/error; the API server's (stdin/stdout/stderr) are
// accepted too, like upstream's remotecommand options do.
type streamFlags struct {
	stdin, stdout, stderr, tty bool
}

func parseStreamFlags(q url.Values) (streamFlags, error) {
	var f streamFlags
	for _, p := range []struct {
		dst   *bool
		names []string
	}{
		{&f.stdin, []string{"input", "stdin"}},
		{&f.stdout, []string{"output", "stdout"}},
		{&f.stderr, []string{"error", "stderr"}},
		{&f.tty, []string{"tty"}},
	} {
		for _, name := range p.names {
			v := q.Get(name)
			if v == "" {
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return f, fmt.Errorf("unable to decode query parameter %s=%q", name, v)
			}
			*p.dst = *p.dst || b
		}
	}
	if !f.stdin && !f.stdout && !f.stderr {
		return f, fmt.Errorf("you must specify at least 1 of stdin, stdout, stderr")
	}
	return f, nil
}

// serveExec answers /exec/{namespace}/{pod}/{container}?command=...: the
// runtime prepares the exec and the client's upgrade is proxied to it.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	flags, err := parseStreamFlags(r.URL.Query())
	if err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		writeStatus(w, http.StatusBadRequest, "you must specify at least one command for the container")
		return
	}
	id, _, err := s.pods.Container(r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container"), false)
	if err != nil {
		writeLookupError(w, err)
		return
	}
	resp, err := s.runtime.Exec(r.Context(), &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: cmd,
		Tty: flags.tty, Stdin: flags.stdin, Stdout: flags.stdout, Stderr: flags.stderr,
	})
	if err != nil {
		writeRuntimeError(w, fmt.Sprintf("exec in container %q", id), err)
		return
	}
	s.proxyStream(w, r, resp.GetUrl())
}

// serveAttach answers /attach/{namespace}/{pod}/{container}.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	flags, err := parseStreamFlags(r.URL.Query())
	if err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	id, _, err := s.pods.Container(r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container"), false)
	if err != nil {
		writeLookupError(w, err)
		return
	}
	resp, err := s.runtime.Attach(r.Context(), &runtimeapi.AttachRequest{
		ContainerId: id,
		Tty:         flags.tty, Stdin: flags.stdin, Stdout: flags.stdout, Stderr: flags.stderr,
	})
	if err != nil {
		writeRuntimeError(w, fmt.Sprintf("attach to container %q", id), err)
		return
	}
	s.proxyStream(w, r, resp.GetUrl())
}

// servePortForward answers /portForward/{namespace}/{pod}. SPDY clients name
// the ports in each stream's headers; WebSocket clients in ?port=.
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	var ports []int32
	for _, v := range r.URL.Query()["port"] {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			writeStatus(w, http.StatusBadRequest, fmt.Sprintf("invalid port %q: must be between 1 and 65535", v))
			return
		}
		ports = append(ports, int32(p))
	}
	sandbox, err := s.pods.SandboxID(r.PathValue("namespace"), r.PathValue("pod"))
	if err != nil {
		writeLookupError(w, err)
		return
	}
	resp, err := s.runtime.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sandbox, Port: ports})
	if err != nil {
		writeRuntimeError(w, fmt.Sprintf("port-forward to sandbox %q", sandbox), err)
		return
	}
	s.proxyStream(w, r, resp.GetUrl())
}

// proxyStream hands the client's request, upgrade headers and all, to the
// runtime's streaming URL and, once that answers 101 Switching Protocols,
// copies bytes both ways until either side closes or the server stops.
// httputil.ReverseProxy strips hop-by-hop headers but puts Connection and
// Upgrade back for upgrade requests; X-Stream-Protocol-Version and
// Sec-WebSocket-* pass as ordinary headers.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, rawURL string) {
	target, err := url.Parse(rawURL)
	if err != nil || target.Scheme == "" || target.Host == "" {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("runtime returned an unusable streaming URL %q", rawURL))
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The runtime's URL replaces path and query entirely: it names a
			// one-time session, and the client's query is already in it.
			u := *target
			pr.Out.URL = &u
			pr.Out.Host = target.Host
		},
		Transport: s.streamTransport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("stream proxy failed", "path", r.URL.Path, "target", target.Redacted(), "err", err)
			writeStatus(w, http.StatusBadGateway, fmt.Sprintf("error proxying to the container runtime's streaming server: %v", err))
		},
	}
	proxy.ServeHTTP(w, r)
}

// newStreamTransport is the client side of the proxy: plain HTTP/1.1 to the
// runtime's loopback streaming server, no environment proxy.
func newStreamTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
}
