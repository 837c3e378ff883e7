// Package certificates holds the controllers of certificates.k8s.io/v1
// CertificateSigningRequests (and PodCertificateRequests) that upstream's
// kube-controller-manager runs, under upstream's names, the CSR ones
// acting as the certificate-controller service account:
//
//   - csrapproving (Approver) approves kubelet client CSRs (signer
//     kubernetes.io/kube-apiserver-client-kubelet) that are valid node
//     client requests, when a SubjectAccessReview says the requestor may
//     create certificatesigningrequests/nodeclient, or
//     certificatesigningrequests/selfnodeclient when it renews its own
//     identity. Nothing else is approved: kubelet serving CSRs, as
//     upstream, wait for an administrator (kubectl certificate approve)
//     or a third-party approver, since nothing here can tell whether the
//     node owns the names it asks for.
//   - csrsigning (Signer) issues certificates from the cluster CA for
//     approved CSRs of kubernetes.io/kube-apiserver-client-kubelet,
//     kubernetes.io/kubelet-serving and kubernetes.io/kube-apiserver-client,
//     after upstream's per-signer checks; a CSR failing them gets a Failed
//     condition (reason SignerValidationFailure).
//   - csrcleaner (Cleaner) deletes CSRs that are done with: issued or
//     denied or failed an hour ago, pending for a day, or whose
//     certificate has expired.
//   - podcertificaterequest-cleaner-controller
//     (PodCertificateRequestCleaner) deletes PodCertificateRequests 15
//     minutes after their creation, as the podcertificaterequestcleaner
//     service account.
//
// The decisions are pure functions (validate.go's checks, issue,
// lifetime, cleanAt) with table tests; the controllers around them read
// an informer and write through the API.
//
// Where skiff differs from upstream:
//   - csrcleaner requeues each CSR for the moment it falls due instead of
//     listing every CSR once an hour, so a CSR goes at its deadline
//     rather than up to an hour after it; the PodCertificateRequest
//     cleaner likewise, where upstream's lists every request each five
//     minutes.
//   - The Approved and Failed conditions the controllers add carry
//     lastUpdateTime and lastTransitionTime themselves (upstream leaves
//     them to the API server), since csrcleaner ages CSRs by them.
//   - A CSR the approver recognizes but the SubjectAccessReview refuses is
//     looked at again after a minute (upstream: its rate limiter's
//     back-off), in case the requestor has been granted the permission
//     since.
//   - The legacy kubernetes.io/legacy-unknown signer is not served: only
//     certificates.k8s.io/v1beta1 could ask for it, and skiff serves v1.
package certificates
