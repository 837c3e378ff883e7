// Package sim runs simulated nodes: it registers Nodes, keeps them alive
// with coordination.k8s.io Lease heartbeats, and "runs" the pods bound to
// them by writing the status a kubelet would write (Running and Ready after
// a delay, Succeeded or Failed after a run time, real deletion once a pod is
// terminating). There are no containers. It exists to test and benchmark
// the control plane (scheduler, controllers) at the scale of thousands of
// nodes from one process, as KWOK does for upstream Kubernetes.
//
// Everything is driven by informers (one for nodes, one for bound pods) and
// three delaying work queues drained by a fixed pool of workers: one for
// node registration and Ready repair, one for Lease heartbeats, one for
// pods. No goroutine is started per node or per pod.
//
// Fail injection: a pod whose container image name contains "fail" never
// becomes Ready; see nextAction for what it does under each restart policy.
//
// # Kubelet endpoint
//
// The simulator answers what the API server asks of a kubelet to serve
// metrics.k8s.io (kubectl top, the HorizontalPodAutoscaler): GET
// https://<InternalIP>:<kubeletEndpoint port>/metrics/resource, in the
// format of internal/kubelet/server (metrics.go), and GET /healthz; any
// other path is 404. Node InternalIPs are loopback addresses (127.0.0.2,
// 127.0.0.3, ...: nodeIP) and Linux routes all of 127.0.0.0/8 to lo, so
// one TLS listener on all addresses (Config.KubeletPort, published as
// every node's status.daemonEndpoints.kubeletEndpoint.port) serves every
// node: the connection's local address says which (nodeIndex); one that
// is no node's gets 404. Its serving certificate names every simulated
// node's address and comes from the cluster CA through a kubelet-serving
// CSR the simulator approves itself (servingcert.go; the API server
// verifies kubelets), self-signed until then. Like a kubelet it
// wants a client certificate, verified against the cluster CA (the one
// the simulator's client trusts, or Config.ClientCAFile), and answers 401
// without one; it authorizes nothing further. A killed node drops the
// connection, as a dead machine would. The listener belongs to Start and
// is closed before Start returns; a negative KubeletPort turns it off.
//
// Usage is computed per request from the pod informer's cache (indexed by
// spec.nodeName), with no goroutine or timer per node or pod: each
// container of a Running pod uses the pod's sim.skiff.io/cpu-usage and
// sim.skiff.io/memory-usage annotations (quantities, for each container),
// or Config.UsageFraction of its requests (see AnnotationCPUUsage). Its
// CPU counter is usage × the time since the container started; the node's
// counts every pod's usage since the node was registered, plus a little
// of its own (nodeSystemCores), and never goes back (accountPod); memory
// is the working set, the node's the sum plus nodeSystemMemory.
package sim
