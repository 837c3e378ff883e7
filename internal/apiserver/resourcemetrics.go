package apiserver

// metrics.k8s.io/v1beta1 — NodeMetrics and PodMetrics — served by the API
// server itself from memory, as metrics-server serves them from its own
// aggregated server: `kubectl top` and the HorizontalPodAutoscaler read
// them with nothing to install. The numbers come from Config.ResourceMetrics
// (internal/resourcemetrics, which scrapes the kubelets); the labels, the
// selection and the namespaces come from the Node and Pod objects here, so
// a label selector selects by the node's or pod's labels, as upstream's.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// ResourceMetrics is where the usage served as metrics.k8s.io comes from.
// Both methods are called once per object of a LIST, so they must be
// cheap, and safe for concurrent use. The objects returned carry name,
// namespace, timestamp, window and usage; the server fills in the rest.
type ResourceMetrics interface {
	// Node returns the named node's usage, false when there is none.
	Node(name string) (metricsv1beta1.NodeMetrics, bool)
	// Pod returns one pod's usage, false when there is none.
	Pod(namespace, name string) (metricsv1beta1.PodMetrics, bool)
}

func init() {
	// The encoders (protobuf in particular) find an object's kind in this
	// scheme.
	utilruntime.Must(metricsv1beta1.AddToScheme(scheme.Scheme))
}

// metricsTable is metrics-server's: the name, each resource's usage as a
// quantity (a pod's summed over its containers), and the window.
var metricsTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"},
		{Name: "cpu", Type: "string", Format: "quantity"},
		{Name: "memory", Type: "string", Format: "quantity"},
		{Name: "Window", Type: "string", Format: "duration"},
	},
	Row: func(obj runtime.Object) []interface{} {
		var name string
		var usage corev1.ResourceList
		var window metav1.Duration
		switch m := obj.(type) {
		case *metricsv1beta1.NodeMetrics:
			name, usage, window = m.Name, m.Usage, m.Window
		case *metricsv1beta1.PodMetrics:
			name, window = m.Name, m.Window
			usage = corev1.ResourceList{}
			for _, c := range m.Containers {
				for r, q := range c.Usage {
					sum := usage[r]
					sum.Add(q)
					usage[r] = sum
				}
			}
		}
		cpu, mem := usage[corev1.ResourceCPU], usage[corev1.ResourceMemory]
		return []interface{}{name, cpu.String(), mem.String(), window.Duration.String()}
	},
}

// resourceMetricsResources returns the two metrics.k8s.io resources when
// the server has a ResourceMetrics source, none otherwise.
func (s *Server) resourceMetricsResources() []*registry.Resource {
	if s.cfg.ResourceMetrics == nil {
		return nil
	}
	gv := metricsv1beta1.SchemeGroupVersion
	readOnly := []string{"get", "list"}
	nodeFields := func(obj runtime.Object) fields.Set {
		return fields.Set{"metadata.name": obj.(*metricsv1beta1.NodeMetrics).Name}
	}
	podFields := func(obj runtime.Object) fields.Set {
		m := obj.(*metricsv1beta1.PodMetrics)
		return fields.Set{"metadata.name": m.Name, "metadata.namespace": m.Namespace}
	}
	return []*registry.Resource{
		{
			GroupVersion: gv, Name: "nodes", Singular: "", Kind: "NodeMetrics",
			New:     func() runtime.Object { return &metricsv1beta1.NodeMetrics{} },
			NewList: func() runtime.Object { return &metricsv1beta1.NodeMetricsList{} },
			Verbs:   readOnly, Table: metricsTable, Fields: nodeFields,
			Get: func(ctx context.Context, _, name string) (runtime.Object, error) {
				return s.nodeMetrics(ctx, name)
			},
			List: func(ctx context.Context, _ string, label labels.Selector, field fields.Selector) ([]runtime.Object, error) {
				return s.listResourceMetrics(ctx, nodesGVR, "", label, field, func(obj runtime.Object) (runtime.Object, bool) {
					n := obj.(*corev1.Node)
					m, ok := s.cfg.ResourceMetrics.Node(n.Name)
					if !ok {
						return nil, false
					}
					m.Labels = n.Labels
					return withMetricsMeta(&m, &m.ObjectMeta), field.Matches(nodeFields(&m))
				})
			},
		},
		{
			GroupVersion: gv, Name: "pods", Singular: "", Kind: "PodMetrics", Namespaced: true,
			New:     func() runtime.Object { return &metricsv1beta1.PodMetrics{} },
			NewList: func() runtime.Object { return &metricsv1beta1.PodMetricsList{} },
			Verbs:   readOnly, Table: metricsTable, Fields: podFields,
			Get: func(ctx context.Context, namespace, name string) (runtime.Object, error) {
				return s.podMetrics(ctx, namespace, name)
			},
			List: func(ctx context.Context, namespace string, label labels.Selector, field fields.Selector) ([]runtime.Object, error) {
				return s.listResourceMetrics(ctx, podsGVR, namespace, label, field, func(obj runtime.Object) (runtime.Object, bool) {
					p := obj.(*corev1.Pod)
					if p.Status.Phase != corev1.PodRunning {
						return nil, false
					}
					m, ok := s.cfg.ResourceMetrics.Pod(p.Namespace, p.Name)
					if !ok {
						return nil, false
					}
					m.Labels = p.Labels
					return withMetricsMeta(&m, &m.ObjectMeta), field.Matches(podFields(&m))
				})
			},
		},
	}
}

// withMetricsMeta sets what metrics-server sets on every object it serves:
// a creationTimestamp of now (the object is made by the request).
func withMetricsMeta(obj runtime.Object, m *metav1.ObjectMeta) runtime.Object {
	m.CreationTimestamp = metav1.NewTime(time.Now())
	return obj
}

func (s *Server) nodeMetrics(ctx context.Context, name string) (runtime.Object, error) {
	sv := s.resources[nodesGVR]
	node := &corev1.Node{}
	if err := sv.store.Get(ctx, sv.key("", name), "0", node); err != nil {
		// metrics-server answers from its node lister: `node "x" not found`.
		return nil, storageError(err, schema.GroupResource{Resource: "node"}, name)
	}
	m, ok := s.cfg.ResourceMetrics.Node(name)
	if !ok {
		return nil, apierrors.NewNotFound(metricsv1beta1.Resource("nodes"), name)
	}
	m.Labels = node.Labels
	return withMetricsMeta(&m, &m.ObjectMeta), nil
}

func (s *Server) podMetrics(ctx context.Context, namespace, name string) (runtime.Object, error) {
	sv := s.resources[podsGVR]
	pod := &corev1.Pod{}
	if err := sv.store.Get(ctx, sv.key(namespace, name), "0", pod); err != nil {
		// metrics-server answers from its pod lister: `pod "x" not found`.
		return nil, storageError(err, schema.GroupResource{Resource: "pod"}, name)
	}
	m, ok := s.cfg.ResourceMetrics.Pod(namespace, name)
	if !ok || pod.Status.Phase != corev1.PodRunning {
		// As metrics-server: the name is namespace/name.
		return nil, apierrors.NewNotFound(metricsv1beta1.Resource("pods"), namespace+"/"+name)
	}
	m.Labels = pod.Labels
	return withMetricsMeta(&m, &m.ObjectMeta), nil
}

// listResourceMetrics lists the nodes or pods (from the watch cache) that
// match label, and turns each into its metrics with join; those without
// metrics, or whose metrics field does not match, are left out. Field
// selectors are checked on the metrics objects, whose fields
// (metadata.name and metadata.namespace) are the objects' own.
func (s *Server) listResourceMetrics(ctx context.Context, gvr schema.GroupVersionResource, namespace string, label labels.Selector, field fields.Selector, join func(runtime.Object) (runtime.Object, bool)) ([]runtime.Object, error) {
	sv := s.resources[gvr]
	list := sv.stored.NewList()
	opts := storage.ListOptions{
		ResourceVersion: "0",
		Predicate:       storage.Predicate{Label: label, Field: fields.Everything(), GetAttrs: sv.getAttrs},
	}
	if err := sv.store.List(ctx, sv.listPrefix(namespace), opts, list); err != nil {
		return nil, storageError(err, sv.groupResource(), "")
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	out := make([]runtime.Object, 0, len(items))
	for _, it := range items {
		if m, ok := join(it); ok {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := meta.Accessor(out[i])
		b, _ := meta.Accessor(out[j])
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return a.GetName() < b.GetName()
	})
	return out, nil
}

// ReadyNodes returns the nodes whose Ready condition is True, from the
// watch cache: the kubelets the resource metrics scraper asks.
func (s *Server) ReadyNodes(ctx context.Context) ([]*corev1.Node, error) {
	sv, ok := s.lookup(nodesGVR)
	if !ok {
		return nil, fmt.Errorf("nodes are not served")
	}
	list := &corev1.NodeList{}
	opts := storage.ListOptions{ResourceVersion: "0", Predicate: storage.Predicate{Label: labels.Everything(), Field: fields.Everything(), GetAttrs: sv.getAttrs}}
	if err := sv.store.List(ctx, sv.listPrefix(""), opts, list); err != nil {
		return nil, err
	}
	out := make([]*corev1.Node, 0, len(list.Items))
	for i := range list.Items {
		n := &list.Items[i]
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				out = append(out, n)
				break
			}
		}
	}
	return out, nil
}

// KubeletGet GETs path from node's kubelet over HTTPS with the server's
// kubelet client certificate, as the proxies do. A status other than 200
// is an error; the caller closes the body.
func (s *Server) KubeletGet(ctx context.Context, node *corev1.Node, path string) (io.ReadCloser, error) {
	host, err := nodeKubeletHost(node)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.kubelet.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s from the kubelet of node %s: %s", path, node.Name, resp.Status)
	}
	return resp.Body, nil
}
