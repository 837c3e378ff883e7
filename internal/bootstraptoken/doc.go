// Package bootstraptoken is the bootstrap token of upstream Kubernetes
// (kubeadm's `--token abcdef.0123456789abcdef`) and skiff's join string
// that carries one with the hash of the cluster CA.
//
// A bootstrap token is `<id>.<secret>`, six and sixteen characters of
// [a-z0-9]. The server keeps it as the Secret kube-system/bootstrap-token-<id>
// of type bootstrap.kubernetes.io/token (Spec, FromSecret: the layout of
// k8s.io/cluster-bootstrap), and Authenticator accepts it as a bearer token
// for user system:bootstrap:<id> in group system:bootstrappers, as
// upstream's bootstrap token authenticator does.
//
// The join string (Join, ParseJoin) is what `skiff token create` prints:
//
//	K10<hex sha256 of the CA's SubjectPublicKeyInfo>::<id>.<secret>
//
// k3s's shape ("K10<hash>::<credentials>") with kubeadm's
// --discovery-token-ca-cert-hash (CAHash): a node that joins with it can
// check the CA the server presents (VerifyCA) before it trusts it.
//
// The package is pure: the server reads Secrets through the function it
// gives Authenticator, the CLI (tokencmd) through client-go.
package bootstraptoken
