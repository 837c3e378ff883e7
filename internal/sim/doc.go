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
package sim
