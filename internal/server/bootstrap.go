package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/admission"
	"github.com/skiff-io/skiff/internal/localpath"
	fcregistry "github.com/skiff-io/skiff/internal/registry/flowcontrol"
	"github.com/skiff-io/skiff/internal/registry/scheduling"
)

// bootstrapState creates, through the API like any client, what every
// cluster has from its first start: the system namespaces, the kubernetes
// Service (its endpoints are runAPIEndpoints'), the kube-dns Service, the
// system priority classes, API Priority and Fairness's configuration, the
// default ServiceCIDR.
type bootstrapState struct {
	done atomic.Bool
	// finished is closed once the objects exist: the components that
	// take Leases in kube-system start after it, so their first attempt
	// succeeds instead of waiting out a retry period.
	finished chan struct{}
	// clusterInfo is the kubeconfig published as kube-public/cluster-info.
	clusterInfo []byte
	// localStorage creates the local-path StorageClass when it is missing.
	localStorage bool
	// serviceCIDRs are the service ranges (--service-cidr) the default
	// ServiceCIDR holds.
	serviceCIDRs []netip.Prefix
}

func (b *bootstrapState) check(context.Context) error {
	if !b.done.Load() {
		return errors.New("not finished")
	}
	return nil
}

func (b *bootstrapState) run(ctx context.Context, cfg *rest.Config, serviceIP, dnsIP netip.Addr, port int) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	tries := 0
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := ensureObjects(ctx, cs, serviceIP, dnsIP, port)
		if err == nil && b.clusterInfo != nil {
			err = ensureClusterInfo(ctx, cs, b.clusterInfo)
		}
		if err == nil && b.localStorage {
			err = ensureLocalPathClass(ctx, cs)
		}
		if err == nil && len(b.serviceCIDRs) > 0 {
			err = ensureDefaultServiceCIDR(ctx, cs, b.serviceCIDRs)
		}
		if err != nil {
			tries++
			if tries%20 == 0 {
				slog.Default().Warn("bootstrap objects not created yet", "err", err)
			}
			return false, nil // the server may not serve yet: try again
		}
		b.done.Store(true)
		close(b.finished)
		return true, nil
	})
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func ensureObjects(ctx context.Context, cs kubernetes.Interface, serviceIP, dnsIP netip.Addr, port int) error {
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err := ignoreExists(err); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	for _, pc := range scheduling.SystemPriorityClasses() {
		_, err := cs.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{})
		if err := ignoreExists(err); err != nil {
			return fmt.Errorf("priorityclass %s: %w", pc.Name, err)
		}
	}
	if err := ensureFlowControl(ctx, cs); err != nil {
		return err
	}
	labels := map[string]string{"component": "apiserver", "provider": "kubernetes"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: serviceIP.String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(port))}},
		},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return fmt.Errorf("service kubernetes: %w", err)
	}
	if err := ensureDNSService(ctx, cs, dnsIP); err != nil {
		return err
	}
	// The kubernetes Service's Endpoints and EndpointSlice list the live
	// API servers: runAPIEndpoints (apiendpoints.go) keeps them.
	return nil
}

// ensureLocalPathClass creates the StorageClass of the built-in local-path
// provisioner when it is missing, as the default class unless another is
// the default already. A class that exists is left as the user made it.
func ensureLocalPathClass(ctx context.Context, cs kubernetes.Interface) error {
	classes := cs.StorageV1().StorageClasses()
	if _, err := classes.Get(ctx, localpath.ClassName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	have, err := classes.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("storage classes: %w", err)
	}
	want := localpath.DefaultClass()
	if admission.DefaultClass(have.Items) != nil {
		want.Annotations = nil
	}
	if _, err := classes.Create(ctx, want, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return fmt.Errorf("storageclass %s: %w", want.Name, err)
	}
	return nil
}

// ensureDNSService creates kube-system/kube-dns with the cluster DNS
// address dnsIP (the 10th of the service CIDR). It has no selector and no
// endpoints: every node agent answers on that address itself (package
// dns), and the label skiff.io/node-local tells the proxy to leave it
// alone. Upstream runs CoreDNS pods behind it instead
// (docs/compatibility.md).
func ensureDNSService(ctx context.Context, cs kubernetes.Interface, dnsIP netip.Addr) error {
	if !dnsIP.IsValid() {
		return nil // a service CIDR too small to hold it
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: map[string]string{
			"k8s-app":             "kube-dns",
			"skiff.io/node-local": "true",
		}},
		Spec: corev1.ServiceSpec{
			ClusterIP: dnsIP.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	_, err := cs.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{})
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.IsInvalid(err):
		// The address is taken (a service created before skiff made
		// kube-dns got it): retrying cannot help, and the rest of the
		// cluster must still start. Pods then cannot resolve cluster names.
		slog.Default().Error("kube-dns Service not created: cluster DNS is unreachable for pods", "clusterIP", dnsIP, "err", err)
		return nil
	}
	return fmt.Errorf("service kube-dns: %w", err)
}

// ensureFlowControl reconciles API Priority and Fairness's bootstrap
// configuration as upstream's apiserver does at start: the mandatory
// objects (exempt, catch-all) are created, or put back to their fixed
// spec (the exempt level's shares and lendable percent excepted); the
// suggested ones are created when missing and kept up to date while their
// apf.kubernetes.io/autoupdate-spec annotation is "true" (an operator who
// sets it to "false" keeps their changes).
func ensureFlowControl(ctx context.Context, cs kubernetes.Interface) error {
	pls, fss := cs.FlowcontrolV1().PriorityLevelConfigurations(), cs.FlowcontrolV1().FlowSchemas()
	levelSpec := func(want *flowcontrolv1.PriorityLevelConfiguration) func(*flowcontrolv1.PriorityLevelConfiguration) bool {
		return func(have *flowcontrolv1.PriorityLevelConfiguration) bool {
			spec := want.Spec
			if want.Name == flowcontrolv1.PriorityLevelConfigurationNameExempt && have.Spec.Exempt != nil {
				spec.Exempt = have.Spec.Exempt // the operator's to set
			}
			changed := !apiequality.Semantic.DeepEqual(have.Spec, spec)
			have.Spec = spec
			return changed
		}
	}
	schemaSpec := func(want *flowcontrolv1.FlowSchema) func(*flowcontrolv1.FlowSchema) bool {
		return func(have *flowcontrolv1.FlowSchema) bool {
			changed := !apiequality.Semantic.DeepEqual(have.Spec, want.Spec)
			have.Spec = want.Spec
			return changed
		}
	}
	for _, mandatory := range []bool{true, false} {
		levels, schemas := fcregistry.MandatoryPriorityLevels(), fcregistry.MandatoryFlowSchemas()
		if !mandatory {
			levels, schemas = fcregistry.SuggestedPriorityLevels(), fcregistry.SuggestedFlowSchemas()
		}
		for _, want := range levels {
			if err := ensureBootstrapObject(ctx, pls, want, mandatory, levelSpec(want)); err != nil {
				return fmt.Errorf("prioritylevelconfiguration %w", err)
			}
		}
		for _, want := range schemas {
			if err := ensureBootstrapObject(ctx, fss, want, mandatory, schemaSpec(want)); err != nil {
				return fmt.Errorf("flowschema %w", err)
			}
		}
	}
	return nil
}

// bootstrapClient is what ensureBootstrapObject needs of a typed client.
type bootstrapClient[T metav1.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// ensureBootstrapObject creates want when it is missing; otherwise, if
// mandatory or annotated for automatic update, lets setSpec put want's
// spec into the stored object and writes it when that changed anything.
func ensureBootstrapObject[T metav1.Object](ctx context.Context, c bootstrapClient[T], want T, mandatory bool, setSpec func(have T) bool) error {
	have, err := c.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, want, metav1.CreateOptions{FieldManager: "api-priority-and-fairness-config-producer-v1"})
		if err := ignoreExists(err); err != nil {
			return fmt.Errorf("%s: %w", want.GetName(), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", want.GetName(), err)
	}
	auto := have.GetAnnotations()[flowcontrolv1.AutoUpdateAnnotationKey] == "true"
	if !mandatory && !auto {
		return nil
	}
	changed := setSpec(have)
	if !auto {
		ann := have.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[flowcontrolv1.AutoUpdateAnnotationKey] = "true"
		have.SetAnnotations(ann)
		changed = true
	}
	if !changed {
		return nil
	}
	if _, err := c.Update(ctx, have, metav1.UpdateOptions{FieldManager: "api-priority-and-fairness-config-producer-v1"}); err != nil {
		return fmt.Errorf("%s: %w", want.GetName(), err)
	}
	return nil
}
