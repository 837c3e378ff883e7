// Package server is the kubelet's HTTPS server, the one upstream serves on
// port 10250. The API server proxies `kubectl logs`, `exec`, `attach` and
// `port-forward` to it, and metrics-server scrapes its stats:
//
//	GET      /containerLogs/{namespace}/{pod}/{container}   CRI log files, with follow/tail/since
//	GET|POST /exec/{namespace}/{pod}/{container}           upgrade proxy to the runtime's streaming server
//	GET|POST /attach/{namespace}/{pod}/{container}         idem
//	GET|POST /portForward/{namespace}/{pod}                idem, for the pod's sandbox
//	GET      /healthz, /pods, /stats/summary, /metrics/resource
//	GET      /metrics                                       the node's Prometheus registry (Config.Metrics)
//	GET      /metrics/cadvisor                              container metrics under cAdvisor's names (cadvisor.go)
//
// The server knows nothing of pod workers: the kubelet core hands it a Pods
// view and the CRI Runtime. Streaming is not served here but by the
// runtime's own streaming server (containerd listens on 127.0.0.1); the
// server asks the runtime for a one-time URL and proxies the client's
// upgraded connection (SPDY or WebSocket, whichever the client asked for) to
// it, byte for byte.
//
// Every request is authenticated and authorized, as upstream's kubelet
// does with webhook authentication and authorization (auth.go): a client
// certificate signed by Config.TLS.ClientCAs or a bearer token that a
// TokenReview accepts, then a SubjectAccessReview on resource "nodes",
// named after this node, with subresource stats, metrics, log or spec for
// those paths and proxy for the rest, the verb from the HTTP method.
// Answers are cached (tokens 2 min, or 10 s when refused; decisions 5 min
// allowed, 30 s denied). There is no anonymous access: 401 without
// credentials, 403 "Forbidden (user=..., verb=..., resource=nodes,
// subresource=...)" when the review denies.
package server
