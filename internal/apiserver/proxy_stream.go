package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/remotecommand"
)

// streamOptions are the options of pods/exec and pods/attach
// (PodExecOptions, PodAttachOptions) as the query carries them.
type streamOptions struct {
	container                  string
	command                    []string
	stdin, stdout, stderr, tty bool
}

func parseStreamOptions(q url.Values) streamOptions {
	return streamOptions{
		container: q.Get("container"),
		command:   q["command"],
		stdin:     queryBool(q, "stdin"),
		stdout:    queryBool(q, "stdout"),
		stderr:    queryBool(q, "stderr"),
		tty:       queryBool(q, "tty"),
	}
}

// object is the options of a CONNECT as admission sees them:
// PodExecOptions, PodAttachOptions or PodPortForwardOptions.
func (o streamOptions) object(sub, container string, ports url.Values) runtime.Object {
	meta := metav1.TypeMeta{APIVersion: "v1"}
	switch sub {
	case "exec":
		meta.Kind = "PodExecOptions"
		return &corev1.PodExecOptions{TypeMeta: meta, Container: container, Command: o.command,
			Stdin: o.stdin, Stdout: o.stdout, Stderr: o.stderr, TTY: o.tty}
	case "attach":
		meta.Kind = "PodAttachOptions"
		return &corev1.PodAttachOptions{TypeMeta: meta, Container: container,
			Stdin: o.stdin, Stdout: o.stdout, Stderr: o.stderr, TTY: o.tty}
	}
	meta.Kind = "PodPortForwardOptions"
	pf := &corev1.PodPortForwardOptions{TypeMeta: meta}
	for _, p := range strings.Split(ports.Get("port"), ",") {
		if n, err := strconv.ParseInt(p, 10, 32); err == nil {
			pf.Ports = append(pf.Ports, int32(n))
		}
	}
	return pf
}

// kubeletQuery is the query of the kubelet's /exec or /attach: input,
// output, error and tty as "1", and for exec the command.
func (o streamOptions) kubeletQuery(exec bool) url.Values {
	q := url.Values{}
	for _, f := range []struct {
		on  bool
		key string
	}{{o.stdin, "input"}, {o.stdout, "output"}, {o.stderr, "error"}, {o.tty, "tty"}} {
		if f.on {
			q.Set(f.key, "1")
		}
	}
	if exec {
		q["command"] = o.command
	}
	return q
}

// serveStream serves pods/exec, pods/attach and pods/portforward (GET or
// POST): it finds the pod's kubelet and then
//   - relays an SPDY upgrade (or a WebSocket one it does not translate)
//     to the kubelet as is;
//   - for exec and attach over WebSocket (v5.channel.k8s.io or
//     v4.channel.k8s.io), translates to SPDY towards the kubelet, as
//     upstream's StreamTranslator does;
//   - for portforward over WebSocket (SPDY/3.1+portforward.k8s.io),
//     tunnels the client's SPDY inside WebSocket messages to the kubelet.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return methodNotAllowed(info, r)
	}
	q := r.URL.Query()
	var ports url.Values
	if info.sub == "portforward" {
		var err error
		if ports, err = portForwardQuery(q); err != nil {
			return err
		}
	}
	pod, err := getPod(r.Context(), info, sv)
	if err != nil {
		return err
	}
	var opts streamOptions
	container := ""
	if info.sub != "portforward" {
		opts = parseStreamOptions(q)
		if container, err = podContainer(pod, opts.container); err != nil {
			return err
		}
	}
	if err := s.admitConnect(r.Context(), sv, info, opts.object(info.sub, container, ports)); err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return noHost(pod.Name)
	}
	host, err := s.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		return err
	}

	switch info.sub {
	case "exec", "attach":
		loc := kubeletURL(host, fmt.Sprintf("/%s/%s/%s/%s", info.sub, pod.Namespace, pod.Name, container), opts.kubeletQuery(info.sub == "exec"))
		if wsstream.IsWebSocketRequest(r) && offersTranslatableProtocol(r) {
			return s.translateStream(w, r, loc, opts)
		}
		return s.relayUpgrade(w, r, loc)
	default: // portforward
		loc := kubeletURL(host, fmt.Sprintf("/portForward/%s/%s", pod.Namespace, pod.Name), ports)
		if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
			return s.tunnelPortForward(w, r, loc)
		}
		return s.relayUpgrade(w, r, loc)
	}
}

// relayUpgrade passes an upgrade request through to loc, or answers 400
// as upstream does when the request does not ask for an upgrade.
func (s *Server) relayUpgrade(w http.ResponseWriter, r *http.Request, loc *url.URL) error {
	if !httpstream.IsUpgradeRequest(r) {
		return apierrors.NewBadRequest("Upgrade request required")
	}
	return s.proxyUpgrade(w, r, loc, forwardHeader(r.Header))
}

// offersTranslatableProtocol: the WebSocket request offers a remote command
// protocol the translator speaks.
func offersTranslatableProtocol(r *http.Request) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			switch strings.TrimSpace(p) {
			case remotecommand.StreamProtocolV5Name, remotecommand.StreamProtocolV4Name:
				return true
			}
		}
	}
	return false
}

// portForwardQuery reads PodPortForwardOptions.Ports ("ports", repeated or
// comma-separated) and returns the kubelet's query: "port" with the ports
// joined by commas, as upstream sends it.
func portForwardQuery(q url.Values) (url.Values, error) {
	var ports []string
	for _, v := range q["ports"] {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("ports: invalid port %q: must be an integer", p))
			}
			ports = append(ports, strconv.FormatInt(n, 10))
		}
	}
	out := url.Values{}
	if len(ports) > 0 {
		out.Set("port", strings.Join(ports, ","))
	}
	return out, nil
}
