// Package server is the kubelet's HTTPS server, the one upstream serves on
// port 10250. The API server proxies `kubectl logs`, `exec`, `attach` and
// `port-forward` to it, and metrics-server scrapes its stats:
//
//	GET      /containerLogs/{namespace}/{pod}/{container}   CRI log files, with follow/tail/since
//	GET|POST /exec/{namespace}/{pod}/{container}           upgrade proxy to the runtime's streaming server
//	GET|POST /attach/{namespace}/{pod}/{container}         idem
//	GET|POST /portForward/{namespace}/{pod}                idem, for the pod's sandbox
//	GET      /healthz, /pods, /stats/summary, /metrics/resource
//
// The server knows nothing of pod workers: the kubelet core hands it a Pods
// view and the CRI Runtime. Streaming is not served here but by the
// runtime's own streaming server (containerd listens on 127.0.0.1); the
// server asks the runtime for a one-time URL and proxies the client's
// upgraded connection (SPDY or WebSocket, whichever the client asked for) to
// it, byte for byte.
//
// Every client must present a certificate signed by Config.TLS.ClientCAs.
// Unlike upstream there is no further authorization (no SubjectAccessReview
// webhook): a verified client certificate allows everything.
package server
