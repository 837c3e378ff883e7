// Package prober runs the liveness, readiness and startup probes of the
// containers on a node, the way the upstream kubelet's prober does.
//
// The kubelet core tells the Manager which containers of a pod are running
// (Sync, after every pod sync); the Manager keeps one worker goroutine per
// (container ID, probe kind). A worker waits initialDelaySeconds after the
// container started, then probes every periodSeconds with timeoutSeconds, and
// turns runs of successThreshold successes or failureThreshold failures into a
// result. A startup probe gates the other two: liveness and readiness do not
// run until the startup probe has succeeded. A new container ID (a restart)
// starts fresh workers, so results reset.
//
// Results reach the kubelet core two ways: Ready and Started answer for the
// container's current state (pod status), and Updates delivers every change
// of a result (a liveness or startup failure there means "kill and restart
// the container"). Each failed probe is also recorded as a Warning event with
// reason Unhealthy on the pod, with the message upstream uses
// ("Liveness probe failed: HTTP probe failed with statuscode: 500").
//
// Handlers: exec (CRI ExecSync), httpGet, tcpSocket and grpc
// (grpc.health.v1.Health/Check). Their failure messages match upstream's,
// because users read them in `kubectl describe pod`.
//
// Differences from upstream Kubernetes:
//   - The first probe runs exactly initialDelaySeconds after the container
//     started; upstream skips whole periods until the delay has passed, so
//     its first probe can come up to one period later.
//   - There is no random start-up jitter after a kubelet restart.
//   - Only results decided by probes are sent as updates; a container's
//     reset to initial values (new container ID) is silent, where upstream's
//     results manager also publishes the initial value of every container.
//   - A probe that targets the pod IP while the pod has none is a probe error
//     (the result is discarded), where upstream would dial the node's
//     loopback address.
//   - A port name that the container does not declare is reported as
//     "port NAME not found", not as upstream's strconv error.
package prober
