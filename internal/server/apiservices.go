package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	aggregatorinformers "k8s.io/kube-aggregator/pkg/client/informers/externalversions"
	apiregistrationlisters "k8s.io/kube-aggregator/pkg/client/listers/apiregistration/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// The aggregation layer (upstream's kube-aggregator, inside the API
// server as upstream has it): every server watches the APIServices and
//
//   - registers one per group/version it serves itself (autoregister),
//     "Local" and always Available;
//   - checks each service-backed one as upstream's availability
//     controller does (the service, its endpoints, then a GET of the
//     group/version's discovery on the server behind it) and writes the
//     Available condition;
//   - hands the service-backed ones to the API server, which proxies
//     their requests (apiserver.SetRemoteAPIs) with the front-proxy
//     client certificate and the user in X-Remote-* headers;
//   - keeps kube-system/extension-apiserver-authentication, from which
//     extension servers learn which client CAs and headers to trust.
//
// Requests reach an extension server at one of its service's ready
// endpoints (upstream's --enable-aggregator-routing), so that the control
// plane needs no service proxy of its own.

// Labels upstream's autoregister puts on the APIServices it manages:
// onstart for the built-in groups, true for those of custom resources.
const (
	autoManagedLabel   = "kube-aggregator.kubernetes.io/automanaged"
	autoManagedOnStart = "onstart"
	autoManagedSync    = "true"
)

// Upstream's reasons of the Available condition.
const (
	reasonLocal            = "Local"
	reasonPassed           = "Passed"
	reasonServiceNotFound  = "ServiceNotFound"
	reasonServicePortError = "ServicePortError"
	reasonEndpointsMissing = "EndpointsNotFound"
	reasonMissingEndpoints = "MissingEndpoints"
	reasonFailedDiscovery  = "FailedDiscoveryCheck"
)

// The checks of an APIService that answers are redone this often (the
// discovery document may change); those of one that does not, sooner.
const (
	availableRecheck   = 5 * time.Minute
	unavailableRecheck = 30 * time.Second
	discoveryTimeout   = 5 * time.Second
)

// extensionAuthConfigMap is the ConfigMap extension API servers read.
const extensionAuthConfigMap = "extension-apiserver-authentication"

// apiServices is the aggregation layer's loop.
type apiServices struct {
	api *apiserver.Server
	log *slog.Logger
	// frontProxyCert presents the front-proxy client certificate
	// (renewed while the server runs); frontProxyCA and clientCA are what
	// extension-apiserver-authentication says to trust.
	frontProxyCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	frontProxyCA   []byte
	clientCA       func() []byte

	client    aggregatorclient.Interface
	core      kubernetes.Interface
	lister    apiregistrationlisters.APIServiceLister
	services  corelisters.ServiceLister
	endpoints discoverylisters.EndpointSliceLister
	queue     workqueue.TypedRateLimitingInterface[string]

	// unavailable and unavailableTotal are upstream's
	// aggregator_unavailable_apiservice metrics: 1 for each APIService
	// not Available, and the count of times each became so, by reason.
	unavailable      *prometheus.GaugeVec
	unavailableTotal *prometheus.CounterVec

	mu sync.Mutex
	// remote is what each service-backed APIService was last found to
	// be, by name: handed to the API server whole after every change.
	remote map[string]*remoteState
}

// remoteState is one service-backed APIService as last checked.
type remoteState struct {
	spec      apiregistrationv1.APIServiceSpec
	transport *http.Transport
	api       apiserver.RemoteAPI
}

// Queue keys besides APIService names.
const (
	keyAutoregister = "\x00autoregister"
	keyAuthConfig   = "\x00extension-apiserver-authentication"
)

// newAPIServices returns the loop, its metrics registered with reg.
func newAPIServices(api *apiserver.Server, reg prometheus.Registerer, lg *slog.Logger) *apiServices {
	a := &apiServices{api: api, log: lg,
		unavailable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aggregator_unavailable_apiservice",
			Help: "Gauge of APIServices which are marked as unavailable broken down by APIService name."}, []string{"name"}),
		unavailableTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aggregator_unavailable_apiservice_total",
			Help: "Counter of APIServices which are marked as unavailable broken down by APIService name and reason."}, []string{"name", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(a.unavailable, a.unavailableTotal)
	}
	return a
}

func (a *apiServices) start(ctx context.Context, wg *sync.WaitGroup, loopback *rest.Config) error {
	var err error
	if a.client, err = aggregatorclient.NewForConfig(loopback); err != nil {
		return err
	}
	if a.core, err = kubernetes.NewForConfig(loopback); err != nil {
		return err
	}
	a.remote = map[string]*remoteState{}
	aggFactory := aggregatorinformers.NewSharedInformerFactory(a.client, 0)
	inf := aggFactory.Apiregistration().V1().APIServices()
	a.lister = inf.Lister()
	factory := informers.NewSharedInformerFactory(a.core, 0)
	svcInf := factory.Core().V1().Services()
	epInf := factory.Discovery().V1().EndpointSlices()
	a.services, a.endpoints = svcInf.Lister(), epInf.Lister()
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "apiservice"})

	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if svc, ok := obj.(*apiregistrationv1.APIService); ok {
			a.queue.Add(svc.Name)
			if svc.Labels[autoManagedLabel] != "" || svc.Spec.Service != nil {
				a.queue.Add(keyAutoregister) // a local one may be due again
			}
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	// A change of a service or its endpoints rechecks the APIServices
	// that name it.
	byService := func(namespace, name string) {
		all, _ := a.lister.List(labels.Everything())
		for _, s := range all {
			if ref := s.Spec.Service; ref != nil && ref.Namespace == namespace && ref.Name == name {
				a.queue.Add(s.Name)
			}
		}
	}
	onService := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		switch o := obj.(type) {
		case *corev1.Service:
			byService(o.Namespace, o.Name)
		case *discoveryv1.EndpointSlice:
			byService(o.Namespace, o.Labels[discoveryv1.LabelServiceName])
		}
	}
	for _, i := range []cache.SharedIndexInformer{svcInf.Informer(), epInf.Informer()} {
		if _, err := i.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: onService, UpdateFunc: func(_, o any) { onService(o) }, DeleteFunc: onService,
		}); err != nil {
			return err
		}
	}
	a.api.OnExtend(func() { a.queue.Add(keyAutoregister) })
	aggFactory.StartWithContext(ctx)
	factory.StartWithContext(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer a.queue.ShutDown()
		if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced, svcInf.Informer().HasSynced, epInf.Informer().HasSynced) {
			return
		}
		a.queue.Add(keyAutoregister)
		a.queue.Add(keyAuthConfig)
		go func() {
			<-ctx.Done()
			a.queue.ShutDown()
		}()
		for a.next(ctx) {
		}
	}()
	return nil
}

// trustChanged rewrites extension-apiserver-authentication (the cluster
// CA was rotated).
func (a *apiServices) trustChanged() error {
	if a.queue != nil {
		a.queue.Add(keyAuthConfig)
	}
	return nil
}

func (a *apiServices) next(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	var (
		again time.Duration
		err   error
	)
	switch key {
	case keyAutoregister:
		err = a.autoregister(ctx)
	case keyAuthConfig:
		err = a.ensureAuthConfig(ctx)
		again = time.Minute // put back if someone changes it
	default:
		again, err = a.sync(ctx, key)
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			a.log.Warn("apiservice", "key", key, "err", err)
		}
		a.queue.AddRateLimited(key)
	default:
		a.queue.Forget(key)
		if again > 0 {
			a.queue.AddAfter(key, again)
		}
	}
	return true
}

// apiServiceName is the name upstream gives the APIService of gv:
// "<version>.<group>" ("v1." for the core group).
func apiServiceName(gv schema.GroupVersion) string { return gv.Version + "." + gv.Group }

// localPriority returns the priorities of a group/version served here:
// the built-in groups in upstream's order, then the others (custom
// resources' groups, as upstream's crdRegistrationController: 1000).
func localPriority(gv schema.GroupVersion) (group, version int32) {
	version = 15
	switch {
	case strings.Contains(gv.Version, "alpha"):
		version = 1
	case strings.Contains(gv.Version, "beta"):
		version = 9
	}
	if rank, ok := apiserver.BuiltinGroupRank(gv.Group); ok {
		return int32(18000 - 100*rank), version
	}
	return 1000, 100
}

// autoregister keeps an APIService for every group/version this server
// serves itself: it creates the missing ones, puts back the spec of those
// it manages, and deletes those it managed for a group/version no longer
// served (a custom resource's version removed). An APIService that names
// a service is the user's, whatever its labels: it is left alone, and its
// group/version is served by the service.
func (a *apiServices) autoregister(ctx context.Context) error {
	local := map[string]schema.GroupVersion{}
	for _, gv := range a.api.LocalGroupVersions() {
		local[apiServiceName(gv)] = gv
	}
	var errs []error
	for name, gv := range local {
		group, version := localPriority(gv)
		label := autoManagedSync
		if group != 1000 {
			label = autoManagedOnStart
		}
		want := apiregistrationv1.APIServiceSpec{Group: gv.Group, Version: gv.Version, GroupPriorityMinimum: group, VersionPriority: version}
		have, err := a.lister.Get(name)
		switch {
		case apierrors.IsNotFound(err):
			obj := &apiregistrationv1.APIService{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{autoManagedLabel: label}},
				Spec:       want,
			}
			if _, err := a.client.ApiregistrationV1().APIServices().Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, err)
			}
		case err != nil:
			errs = append(errs, err)
		case have.Spec.Service != nil || have.Labels[autoManagedLabel] == "":
			// The user's.
		case have.Spec.Group != want.Group || have.Spec.Version != want.Version ||
			have.Spec.GroupPriorityMinimum != want.GroupPriorityMinimum || have.Spec.VersionPriority != want.VersionPriority ||
			have.Spec.InsecureSkipTLSVerify || len(have.Spec.CABundle) > 0:
			upd := have.DeepCopy()
			upd.Spec = want
			if _, err := a.client.ApiregistrationV1().APIServices().Update(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
				errs = append(errs, err)
			}
		}
	}
	all, err := a.lister.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, s := range all {
		if _, ok := local[s.Name]; ok || s.Spec.Service != nil || s.Labels[autoManagedLabel] != autoManagedSync {
			continue
		}
		pre := metav1.Preconditions{UID: &s.UID, ResourceVersion: &s.ResourceVersion}
		err := a.client.ApiregistrationV1().APIServices().Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &pre})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sync checks one APIService, writes its Available condition and hands
// the service-backed ones to the API server. It returns when to check
// again.
func (a *apiServices) sync(ctx context.Context, name string) (time.Duration, error) {
	svc, err := a.lister.Get(name)
	if apierrors.IsNotFound(err) {
		a.forget(name)
		a.unavailable.DeleteLabelValues(name)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if svc.Spec.Service == nil {
		a.forget(name)
		cond := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue,
			Reason: reasonLocal, Message: "Local APIServices are always available"}
		return 0, a.setCondition(ctx, svc, cond)
	}
	st := a.state(svc)
	cond, resources := a.check(ctx, svc, st)
	st.api.Available = cond.Status == apiregistrationv1.ConditionTrue
	if resources != nil || !st.api.Available {
		st.api.Resources = resources
	}
	a.publish()
	again := availableRecheck
	if !st.api.Available {
		again = unavailableRecheck
	}
	return again, a.setCondition(ctx, svc, cond)
}

// state returns the remote state of a service-backed APIService, made
// anew (with a new transport) when its spec changed.
func (a *apiServices) state(svc *apiregistrationv1.APIService) *remoteState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.remote[svc.Name]
	if st != nil && st.spec.Service != nil && *st.spec.Service == *svc.Spec.Service &&
		string(st.spec.CABundle) == string(svc.Spec.CABundle) && st.spec.InsecureSkipTLSVerify == svc.Spec.InsecureSkipTLSVerify {
		st.spec = *svc.Spec.DeepCopy()
		st.api.GroupPriorityMinimum, st.api.VersionPriority = svc.Spec.GroupPriorityMinimum, svc.Spec.VersionPriority
		st.api.GroupVersion = schema.GroupVersion{Group: svc.Spec.Group, Version: svc.Spec.Version}
		return st
	}
	if st != nil {
		st.transport.CloseIdleConnections()
	}
	ref := *svc.Spec.Service
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	serverName := ref.Name + "." + ref.Namespace + ".svc"
	tlsConfig := &tls.Config{
		ServerName:           serverName,
		InsecureSkipVerify:   svc.Spec.InsecureSkipTLSVerify, //nolint:gosec // the APIService asks for it, as upstream
		GetClientCertificate: a.frontProxyCert,
		MinVersion:           tls.VersionTLS12,
	}
	if len(svc.Spec.CABundle) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(svc.Spec.CABundle)
		tlsConfig.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: discoveryTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		TLSClientConfig: tlsConfig,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			addr, err := a.endpoint(ref.Namespace, ref.Name, port)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	st = &remoteState{spec: *svc.Spec.DeepCopy(), transport: transport, api: apiserver.RemoteAPI{
		GroupVersion:         schema.GroupVersion{Group: svc.Spec.Group, Version: svc.Spec.Version},
		GroupPriorityMinimum: svc.Spec.GroupPriorityMinimum,
		VersionPriority:      svc.Spec.VersionPriority,
		Host:                 net.JoinHostPort(serverName, strconv.Itoa(int(port))),
		Transport:            transport,
	}}
	a.remote[svc.Name] = st
	return st
}

// forget drops what a service-backed APIService was, when it is deleted
// or becomes local.
func (a *apiServices) forget(name string) {
	a.mu.Lock()
	st := a.remote[name]
	delete(a.remote, name)
	a.mu.Unlock()
	if st != nil {
		st.transport.CloseIdleConnections()
		a.publish()
	}
}

// publish hands the service-backed APIServices to the API server.
func (a *apiServices) publish() {
	a.mu.Lock()
	apis := make([]apiserver.RemoteAPI, 0, len(a.remote))
	for _, st := range a.remote {
		apis = append(apis, st.api)
	}
	a.mu.Unlock()
	a.api.SetRemoteAPIs(apis)
}

// errNoEndpoint is what a dial finds when the service has no ready
// endpoint (any more).
var errNoEndpoint = errors.New("no ready endpoint")

// endpoint picks a ready endpoint of the service's port, at random.
func (a *apiServices) endpoint(namespace, name string, port int32) (string, error) {
	addrs, _, err := a.readyAddresses(namespace, name, port)
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("service/%s in %q: %w", name, namespace, errNoEndpoint)
	}
	return addrs[rand.IntN(len(addrs))], nil
}

// readyAddresses returns the ready addresses (host:port) of the service's
// port, and the port's name.
func (a *apiServices) readyAddresses(namespace, name string, port int32) ([]string, string, error) {
	svc, err := a.services.Services(namespace).Get(name)
	if err != nil {
		return nil, "", err
	}
	var portName string
	found := false
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			portName, found = p.Name, true
			break
		}
	}
	if !found {
		return nil, "", errPortNotServed
	}
	sls, err := a.endpoints.EndpointSlices(namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return nil, portName, err
	}
	var addrs []string
	for _, sl := range sls {
		var target int32
		for _, p := range sl.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				target = *p.Port
			}
		}
		if target == 0 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, ip := range ep.Addresses {
				addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(int(target))))
			}
		}
	}
	return addrs, portName, nil
}

var errPortNotServed = errors.New("port not served")

// check runs upstream's availability checks of a service-backed
// APIService and, when they pass, returns its resource list.
func (a *apiServices) check(ctx context.Context, svc *apiregistrationv1.APIService, st *remoteState) (apiregistrationv1.APIServiceCondition, *metav1.APIResourceList) {
	ref := svc.Spec.Service
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	cond := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse}
	addrs, portName, err := a.readyAddresses(ref.Namespace, ref.Name, port)
	switch {
	case apierrors.IsNotFound(err):
		cond.Reason, cond.Message = reasonServiceNotFound, fmt.Sprintf("service/%s in %q is not present", ref.Name, ref.Namespace)
		return cond, nil
	case errors.Is(err, errPortNotServed):
		cond.Reason, cond.Message = reasonServicePortError, fmt.Sprintf("service/%s in %q is not listening on port %d", ref.Name, ref.Namespace, port)
		return cond, nil
	case err != nil:
		cond.Reason, cond.Message = reasonEndpointsMissing, fmt.Sprintf("cannot find endpoints for service/%s in %q", ref.Name, ref.Namespace)
		return cond, nil
	case len(addrs) == 0:
		cond.Reason, cond.Message = reasonMissingEndpoints, fmt.Sprintf("endpoints for service/%s in %q have no addresses with port name %q", ref.Name, ref.Namespace, portName)
		return cond, nil
	}
	path := "/apis/" + svc.Spec.Group + "/" + svc.Spec.Version
	list, err := a.discover(ctx, st, path)
	if err != nil {
		cond.Reason, cond.Message = reasonFailedDiscovery, fmt.Sprintf("failing or missing response from https://%s%s: %v", st.api.Host, path, err)
		return cond, nil
	}
	cond.Status, cond.Reason, cond.Message = apiregistrationv1.ConditionTrue, reasonPassed, "all checks passed"
	return cond, list
}

// discover GETs a group/version's resource list as upstream's aggregator
// does, as system:kube-aggregator in system:masters.
func (a *apiServices) discover(ctx context.Context, st *remoteState, path string) (*metav1.APIResourceList, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+st.api.Host+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	apiserver.SetRemoteUser(req.Header, &apiserver.User{Name: "system:kube-aggregator", Groups: []string{"system:masters"}})
	resp, err := st.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("bad status from https://%s%s: %d", st.api.Host, path, resp.StatusCode)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("its resource list: %w", err)
	}
	return &list, nil
}

// setCondition writes the Available condition when it changed.
func (a *apiServices) setCondition(ctx context.Context, svc *apiregistrationv1.APIService, cond apiregistrationv1.APIServiceCondition) error {
	var have *apiregistrationv1.APIServiceCondition
	for i := range svc.Status.Conditions {
		if svc.Status.Conditions[i].Type == cond.Type {
			have = &svc.Status.Conditions[i]
		}
	}
	if cond.Status == apiregistrationv1.ConditionTrue {
		a.unavailable.WithLabelValues(svc.Name).Set(0)
	} else {
		a.unavailable.WithLabelValues(svc.Name).Set(1)
	}
	if have != nil && have.Status == cond.Status && have.Reason == cond.Reason && have.Message == cond.Message {
		return nil
	}
	if cond.Status != apiregistrationv1.ConditionTrue && (have == nil || have.Status == apiregistrationv1.ConditionTrue) {
		a.unavailableTotal.WithLabelValues(svc.Name, cond.Reason).Inc()
	}
	upd := svc.DeepCopy()
	cond.LastTransitionTime = metav1.Now()
	if have != nil && have.Status == cond.Status {
		cond.LastTransitionTime = have.LastTransitionTime
	}
	var conds []apiregistrationv1.APIServiceCondition
	for _, c := range upd.Status.Conditions {
		if c.Type != cond.Type {
			conds = append(conds, c)
		}
	}
	upd.Status.Conditions = append(conds, cond)
	_, err := a.client.ApiregistrationV1().APIServices().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		a.queue.Add(svc.Name) // look again at what is there now
		return nil
	}
	return err
}

// ensureAuthConfig writes kube-system/extension-apiserver-authentication
// as upstream's ClusterAuthenticationTrustController does: the client CA
// of the cluster, and the front-proxy CA with the names and headers an
// extension server is to trust in a request it proxies.
func (a *apiServices) ensureAuthConfig(ctx context.Context) error {
	want := map[string]string{
		"client-ca-file":                     string(a.clientCA()),
		"requestheader-client-ca-file":       string(a.frontProxyCA),
		"requestheader-allowed-names":        `["front-proxy-client"]`,
		"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
		"requestheader-group-headers":        `["X-Remote-Group"]`,
		"requestheader-username-headers":     `["X-Remote-User"]`,
		"requestheader-uid-headers":          `["X-Remote-Uid"]`,
	}
	cms := a.core.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	have, err := cms.Get(ctx, extensionAuthConfigMap, metav1.GetOptions{})
	if err == nil {
		// Servers whose front-proxy CAs differ (joined before they had
		// one) each add theirs, as upstream's servers do.
		want["requestheader-client-ca-file"] = mergeCerts(have.Data["requestheader-client-ca-file"], a.frontProxyCA, time.Now())
	}
	if apierrors.IsNotFound(err) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: extensionAuthConfigMap, Namespace: metav1.NamespaceSystem}, Data: want}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	same := len(have.Data) == len(want)
	for k, v := range want {
		same = same && have.Data[k] == v
	}
	if same {
		return nil
	}
	upd := have.DeepCopy()
	upd.Data = want
	_, err = cms.Update(ctx, upd, metav1.UpdateOptions{})
	return err
}

// mergeCerts returns the certificates of bundle and own, each once,
// without those expired.
func mergeCerts(bundle string, own []byte, now time.Time) string {
	var out []byte
	seen := map[string]bool{}
	for _, data := range [][]byte{own, []byte(bundle)} {
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if block.Type != "CERTIFICATE" || err != nil || now.After(cert.NotAfter) || seen[string(block.Bytes)] {
				continue
			}
			seen[string(block.Bytes)] = true
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})...)
		}
	}
	return string(out)
}
