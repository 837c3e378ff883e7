package podautoscaler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// MetricsClient reads the resource usage of pods, as the resource metrics
// API (metrics.k8s.io) reports it. The controller owns this interface so
// that its tests, and a benchmark, can stand in for the API.
type MetricsClient interface {
	// PodUsage returns the latest usage of the pods in namespace that
	// selector matches: one PodUsage per pod the API has a sample for, in
	// no particular order. A pod the API knows nothing of is absent, not
	// an error; an API that cannot be reached, or is not served, is an
	// error.
	PodUsage(ctx context.Context, namespace string, selector labels.Selector) ([]PodUsage, error)
}

// PodUsage is one pod's latest sample.
type PodUsage struct {
	Name string
	// Timestamp is the end of the window the usage was averaged over.
	Timestamp time.Time
	Window    time.Duration
	// Containers holds the usage of each of the pod's containers.
	Containers []ContainerUsage
}

// ContainerUsage is one container's usage within a PodUsage.
type ContainerUsage struct {
	Name  string
	Usage corev1.ResourceList
}

// NewMetricsClient returns the MetricsClient over the resource metrics
// API: a list of PodMetrics with the label selector.
func NewMetricsClient(client metricsclient.Interface) MetricsClient {
	return apiMetrics{client: client}
}

type apiMetrics struct {
	client metricsclient.Interface
}

func (m apiMetrics) PodUsage(ctx context.Context, namespace string, selector labels.Selector) ([]PodUsage, error) {
	list, err := m.client.MetricsV1beta1().PodMetricses(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	out := make([]PodUsage, 0, len(list.Items))
	for _, pm := range list.Items {
		u := PodUsage{
			Name:       pm.Name,
			Timestamp:  pm.Timestamp.Time,
			Window:     pm.Window.Duration,
			Containers: make([]ContainerUsage, 0, len(pm.Containers)),
		}
		for _, c := range pm.Containers {
			u.Containers = append(u.Containers, ContainerUsage{Name: c.Name, Usage: c.Usage})
		}
		out = append(out, u)
	}
	return out, nil
}

// samples turns the pods' usage into the samples of metric m, by pod
// name. For a Resource metric a pod's sample is the sum over its
// containers, and a pod with no container, or with a container that
// reports no usage of the resource, has none. For a ContainerResource
// metric it is that container's usage; a pod whose metrics lack the
// container fails the metric, as upstream (a container without the
// resource only leaves its pod without a sample).
func samples(usage []PodUsage, m ResourceMetric, namespace string) (map[string]Sample, error) {
	out := make(map[string]Sample, len(usage))
	for _, pu := range usage {
		var sum int64
		found := false
		for _, c := range pu.Containers {
			if m.Container != "" && c.Name != m.Container {
				continue
			}
			q, ok := c.Usage[m.Name]
			if !ok {
				found = false
				break
			}
			sum += q.MilliValue()
			found = true
			if m.Container != "" {
				break
			}
		}
		if m.Container != "" && !hasContainer(pu, m.Container) {
			return nil, fmt.Errorf("failed to get container metrics: container %s not present in metrics for pod %s/%s", m.Container, namespace, pu.Name)
		}
		if found {
			out[pu.Name] = Sample{Value: sum, Timestamp: pu.Timestamp, Window: pu.Window}
		}
	}
	return out, nil
}

func hasContainer(pu PodUsage, name string) bool {
	for _, c := range pu.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}
