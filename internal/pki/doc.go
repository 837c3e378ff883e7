// Package pki creates and keeps the TLS material of `skiff server`: a
// cluster CA with the API server's serving certificate and the admin client
// certificate, a separate CA for the embedded etcd with its server and
// client certificates, and the admin kubeconfig.
//
// Ensure is called on every start. It creates what is missing and reuses
// what is present and still valid, byte for byte, so kubeconfigs handed out
// earlier keep working across restarts. A leaf certificate is reissued when
// it no longer matches what the configuration asks for (for example the
// serving certificate after --tls-san changed), when it was not signed by
// the current CA, or when it is close to expiry; a CA is never replaced
// behind the operator's back. An operator may put their own CA (ca.crt and
// ca.key) in the directory before the first start and skiff issues its
// leaves from it.
//
// Leaves live a year (Config.LeafValidity) and are renewed two thirds into
// their lifetime, or 90 days before they expire if that is sooner: by
// Ensure on start and, while the server runs, by Bundle.Renew, which
// rechecks every leaf the bundle keeps (those of Ensure, IssueClient and
// IssueServing). A leaf renewed for its age keeps its key, so its
// certificate file alone changes, in one rename. The CAs live ten years
// and are never renewed automatically; Bundle.RotateCA replaces the
// cluster CA with an overlap in which both are trusted (rotate.go).
//
// Layout of Config.Dir:
//
//	ca.crt ca.key                 cluster CA ("skiff-ca"; "skiff-ca@<unix time>" once
//	                              rotated); during a rotation's overlap ca.crt holds the
//	                              previous CA too, after the current one
//	ca-cross.crt                  during the overlap: the CA cross-signed by the previous one
//	serving.crt serving.key       API server serving certificate
//	admin.crt admin.key           client certificate system:admin / system:masters
//	apiserver-kubelet-client.crt apiserver-kubelet-client.key
//	                              the API server's client certificate for kubelets
//	                              (kube-apiserver-kubelet-client, no group)
//	etcd/ca.crt etcd/ca.key       etcd CA ("skiff-etcd-ca")
//	etcd/server.crt etcd/server.key  embedded etcd server and peer certificate
//	etcd/client.crt etcd/client.key  the API server's client certificate for etcd
//
// Keys are ECDSA P-256, written with mode 0600; every file is written
// atomically (temporary file, fsync, rename).
package pki
