// Package audit is the API server's audit log, as upstream's
// kube-apiserver keeps it: a Policy (audit.k8s.io/v1, read from
// --audit-policy-file) decides for each request whether it is recorded
// and at which Level, and the API server (internal/apiserver) hands the
// Events it builds for the request's stages to a Sink; LogBackend is the
// Sink that writes them, one JSON object a line, to a file rotated by
// size (--audit-log-path, --audit-log-maxsize, ...).
//
// The wire types (Policy, Event) are our own, with the JSON field names
// of audit.k8s.io/v1: importing k8s.io/apiserver for them would bring its
// scheme and conversion machinery for a dozen structs.
//
// Where skiff differs from upstream:
//
//   - Only the log backend, only its "json" format, and only one mode:
//     events are encoded on the request's goroutine and written by one
//     writer goroutine from a bounded queue. When the queue is full a
//     request waits for room at most BlockTimeout, then its event is
//     dropped and counted (apiserver_audit_error_total{plugin="log"}); a
//     request is never failed for its audit event. This is upstream's
//     "batch" mode with a short back-pressure instead of none; upstream's
//     "blocking" and "blocking-strict" modes are not offered.
//   - requestObject and responseObject are the bodies as the client sent
//     them and as the server served them when those are JSON; a protobuf
//     body is decoded and encoded as JSON, as upstream records every
//     body. A YAML or CBOR body is not recorded, nor is a body over
//     MaxBodyBytes (3 MiB, the request limit): the annotation
//     "audit.skiff.io/omitted" says which and why. Watch streams and the
//     other long-running answers are not recorded, as upstream's.
package audit
