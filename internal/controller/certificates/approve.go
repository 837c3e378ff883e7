package certificates

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// ApproverName is csrapproving's --controllers name, upstream's.
const ApproverName = "csrapproving"

// ReasonAutoApproved is the reason of the Approved condition csrapproving
// gives.
const ReasonAutoApproved = "AutoApproved"

// refusedRetry is how long a CSR that the approver recognized but whose
// SubjectAccessReview refused waits to be looked at again: the requestor
// may be granted the permission meanwhile, which no CSR event announces.
const refusedRetry = time.Minute

// ApproverOptions configure csrapproving.
type ApproverOptions struct {
	// Workers is the number of CSRs handled at once (default 5).
	Workers int
	// Clock tells the time (default the real clock).
	Clock clock.PassiveClock
}

// Approver is csrapproving.
type Approver struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   ApproverOptions

	csrs   certlisters.CertificateSigningRequestLister
	nodes  corelisters.NodeLister
	synced []cache.InformerSynced
	queue  *reconcile.Queue
}

// A request the approver may approve: recognized by its shape, approved
// when the requestor may create permission.
type recognizer struct {
	recognize  func(*Approver, *certv1.CertificateSigningRequest, *x509.CertificateRequest) bool
	permission authorizationv1.ResourceAttributes
	message    string
}

// recognizers, in the order tried: a node renewing its own client
// certificate, then any node client certificate (a bootstrapping
// kubelet's, asked for with its bootstrap token), then a node's serving
// certificate for its own name and addresses (skiff's: upstream approves
// no serving certificate by itself).
var recognizers = []recognizer{
	{
		recognize:  isSelfNodeClient,
		permission: csrPermission("selfnodeclient"),
		message:    "Auto approving self kubelet client certificate after SubjectAccessReview.",
	},
	{
		recognize:  isNodeClient,
		permission: csrPermission("nodeclient"),
		message:    "Auto approving kubelet client certificate after SubjectAccessReview.",
	},
	{
		recognize:  (*Approver).isSelfNodeServer,
		permission: csrPermission("selfnodeserver"),
		message:    "Auto approving self kubelet serving certificate after SubjectAccessReview.",
	},
}

// signers are those whose requests the approver looks at.
func approverSigner(name string) bool {
	return name == certv1.KubeAPIServerClientKubeletSignerName || name == certv1.KubeletServingSignerName
}

func csrPermission(subresource string) authorizationv1.ResourceAttributes {
	return authorizationv1.ResourceAttributes{Group: certv1.GroupName, Resource: "certificatesigningrequests", Verb: "create", Subresource: subresource}
}

// isNodeClient: a kubelet client certificate request, valid as such.
func isNodeClient(_ *Approver, csr *certv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	return csr.Spec.SignerName == certv1.KubeAPIServerClientKubeletSignerName &&
		validateKubeletClient(req, csr.Spec.Usages) == nil
}

// isSelfNodeClient: a node client request by the node it names.
func isSelfNodeClient(a *Approver, csr *certv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	return csr.Spec.Username == req.Subject.CommonName && isNodeClient(a, csr, req)
}

// isSelfNodeServer: a kubelet serving certificate request by the node it
// names, for names and addresses that node's Node object holds (its name,
// its Hostname and IP addresses). A node reports its own addresses, so
// this trusts a node with the addresses it claims: the Node authorizer
// and NodeRestriction already let it write nothing but its own Node.
func (a *Approver) isSelfNodeServer(csr *certv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	if csr.Spec.SignerName != certv1.KubeletServingSignerName || csr.Spec.Username != req.Subject.CommonName ||
		validateKubeletServing(req, csr.Spec.Usages) != nil {
		return false
	}
	node, err := a.nodes.Get(strings.TrimPrefix(req.Subject.CommonName, nodeUserPrefix))
	if err != nil {
		return false
	}
	names := map[string]bool{node.Name: true}
	for _, addr := range node.Status.Addresses {
		names[addr.Address] = true
	}
	for _, d := range req.DNSNames {
		if !names[d] || apiServerName(d) {
			return false
		}
	}
	for _, ip := range req.IPAddresses {
		// Loopback stays allowed: a node on the server's machine may
		// have no other address (tests, a single machine).
		if !names[ip.String()] || ip.IsUnspecified() {
			return false
		}
	}
	return true
}

// apiServerName reports whether a DNS name is one the API servers'
// certificates carry and clients verify them by (agents fail over between
// servers by the name "kubernetes"): a node that calls itself so, or
// reports it as an address, is refused a serving certificate for it.
func apiServerName(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return name == "localhost" || name == "kubernetes" || strings.HasPrefix(name, "kubernetes.")
}

// NewApprover builds csrapproving and registers its CSR handler on
// factory. Only undecided kubelet client and serving CSRs are queued.
func NewApprover(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...ApproverOptions) (*Approver, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", ApproverName)
	}
	var o ApproverOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	a := &Approver{client: client, log: slog.Default().With("controller", ApproverName), opts: o}
	a.queue = reconcile.New(ApproverName, a.sync)
	inf := factory.Certificates().V1().CertificateSigningRequests()
	a.csrs = inf.Lister()
	nodes := factory.Core().V1().Nodes()
	a.nodes = nodes.Lister()
	a.synced = []cache.InformerSynced{inf.Informer().HasSynced, nodes.Informer().HasSynced}
	if _, err := inf.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			csr, ok := obj.(*certv1.CertificateSigningRequest)
			return ok && approverSigner(csr.Spec.SignerName) && !decided(csr)
		},
		Handler: a.queue.Handler(),
	}); err != nil {
		return nil, fmt.Errorf("%s: csr handler: %w", ApproverName, err)
	}
	return a, nil
}

// Start waits for the CSR cache to sync, approves until ctx ends, and
// returns after the workers have exited.
func (a *Approver) Start(ctx context.Context) error {
	a.log.Info("starting", "workers", a.opts.Workers)
	return a.queue.Run(ctx, a.opts.Workers, a.synced...)
}

// sync approves an undecided CSR that a recognizer recognizes and whose
// requestor a SubjectAccessReview allows the recognizer's permission.
func (a *Approver) sync(ctx context.Context, key string) error {
	csr, err := a.csrs.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csr %s: %w", key, err)
	}
	if decided(csr) || !approverSigner(csr.Spec.SignerName) {
		return nil
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return fmt.Errorf("csr %s: %w", key, err)
	}
	var tried []string
	for _, r := range recognizers {
		if !r.recognize(a, csr, req) {
			continue
		}
		tried = append(tried, r.permission.Subresource)
		ok, err := a.authorize(ctx, csr, r.permission)
		if err != nil {
			return fmt.Errorf("csr %s: %w", key, err)
		}
		if !ok {
			continue
		}
		csr = csr.DeepCopy()
		csr.Status.Conditions = append(csr.Status.Conditions,
			condition(certv1.CertificateApproved, ReasonAutoApproved, r.message, a.opts.Clock.Now()))
		if _, err := a.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("csr %s: approve: %w", key, err)
		}
		a.log.Info("approved kubelet certificate", "csr", key, "signer", csr.Spec.SignerName, "requestor", csr.Spec.Username, "as", r.permission.Subresource)
		return nil
	}
	if len(tried) > 0 {
		a.log.Debug("recognized csr but subject access review refused", "csr", key, "requestor", csr.Spec.Username, "tried", tried)
		a.queue.AddAfter(key, refusedRetry)
	}
	return nil
}

// authorize asks whether the CSR's requestor may do rattrs.
func (a *Approver) authorize(ctx context.Context, csr *certv1.CertificateSigningRequest, rattrs authorizationv1.ResourceAttributes) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups, Extra: extra,
			ResourceAttributes: &rattrs,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("subject access review: %w", err)
	}
	return sar.Status.Allowed, nil
}
