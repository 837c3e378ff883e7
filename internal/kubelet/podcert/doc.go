// Package podcert gets the certificates of podCertificate projected volume
// sources: for each such source of each pod on the node, the kubelet
// generates a private key of the requested type, asks the source's signer
// for a certificate with a PodCertificateRequest (certificates.k8s.io/v1),
// made as the node, and hands the key and the issued chain to the volume
// manager (internal/kubelet/volume), which writes them into the pod's
// projected volume like any other projected content.
//
// The work is driven by the volume manager's SetUp, which the kubelet
// calls on every pod sync: CredentialBundle never waits for a signer. The
// first call for a source creates a request and reports that nothing is
// issued yet, so the volume, and with it the pod, is not set up; the pod
// worker retries, and the Manager wakes the pod (Notify) as soon as its
// request changes. Once issued, the key and chain are kept in memory, and
// only there, and reused for as long as the pod lives (a container that
// restarts, however often, costs no new request). After the certificate's
// beginRefreshAt (plus up to five minutes of jitter, as upstream) the next
// SetUp creates one refresh request while the current certificate is still
// served; when it is issued the volume's content changes and is rewritten
// atomically.
//
// A request is watched through an informer on the node's own requests
// (field selector spec.nodeName, all the Node authorizer lets a kubelet
// list). A request that has not shown up ten minutes after it was created
// is taken for deleted and made again, as upstream.
//
// Differences from upstream, on purpose: a Denied or Failed request is
// retried after a back-off (one minute, doubling to an hour), where
// upstream's kubelet gives up on the source for the pod's lifetime; and a
// refresh that is denied or fails keeps the current certificate in the
// volume until the retry succeeds, where upstream stops serving it.
// skiff's kubelet also emits no events of its own for denials, overdue
// refreshes and expiry; a pod whose first certificate is denied shows the
// denial in its FailedMount events.
package podcert
