// Package conformance runs upstream's Kubernetes conformance suite against
// a skiff cluster and writes the result to docs/conformance.md. It is
// `make conformance`, not part of `make test`: the suite's tests sum to
// hours.
//
// The test binaries come from upstream's own Go module: suite/ is a module
// of its own that requires k8s.io/kubernetes at the API level skiff serves
// (with every staging module replaced by its published version), and the
// runner builds from it e2e.test, the ginkgo CLI that runs it in parallel,
// and agnhost, the image most of the suite's pods run. They are cached
// under ~/.cache/skiff/conformance/<version>, keyed by suite/go.sum.
//
// The images the suite names (`e2e.test --list-images`) are written as OCI
// tarballs: agnhost from upstream's source with the tools its Dockerfile
// adds taken from this machine, skiff's pause and busybox under upstream's
// names, and stand-ins only where a test merely needs a web server (httpd,
// nginx: busybox's httpd). Images that cannot be made here are named in the
// report, and the tests that need them fail as they would on a cluster
// without them.
//
// report.go turns ginkgo's JSON report into the markdown; it never counts
// a test that returned early (upstream's CRD and webhook tests return
// without failing when their CRD cannot be created) as passed.
package conformance
