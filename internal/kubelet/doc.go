// Package kubelet is skiff's node agent. It registers its Node, renews the
// node's Lease, and runs the pods bound to the node in a container runtime
// through CRI (containerd in practice): a sandbox per pod, init containers
// in order, then the containers, restarted by the pod's restartPolicy with
// upstream's crash-loop back-off, probed, and reported in pods/status.
//
// The kubelet is level-triggered like every skiff controller: each sync of a
// pod reads the pod (desired state, from an informer) and the runtime's
// sandboxes and containers labelled with the pod's UID (actual state), and
// acts on the difference. All state that matters lives in those two places,
// so a kubelet that restarts adopts the containers it finds instead of
// starting them twice. The one exception is in-place resize: the resources
// the kubelet accepted for a pod are kept in the pod's directory, as
// upstream keeps its allocation checkpoint (resize.go).
//
// Organisation: kubelet.go (Config, Start, the work queue), node.go and
// nodeinfo.go (registration, status, Lease), runtimestate.go (what CRI says
// about a pod), sync.go (one pod's reconcile), sandbox.go and container.go
// (CRI configs), ephemeral.go (debug containers added through
// pods/ephemeralcontainers), resize.go (pods/resize), images.go, hooks.go,
// backoff.go, status.go (pods/status), terminate.go (graceful deletion),
// streaming.go (what the kubelet's HTTP server asks about pods), metrics.go
// (upstream's kubelet_* metrics, registered on Config.Registerer).
package kubelet
