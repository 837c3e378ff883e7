package apps

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Column definitions shared by the workload tables, with upstream's
// descriptions.
var (
	containersColumn = metav1.TableColumnDefinition{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."}
	imagesColumn     = metav1.TableColumnDefinition{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."}
	readyColumn      = metav1.TableColumnDefinition{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"}
)

// containerCells renders a template's container names and images as the
// wide columns show them: comma-separated, in order.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// selectorString renders a label selector as `kubectl get -o wide` and
// the scale subresource show it ("app=web"); "<invalid>" when it does not
// parse, as upstream's deployment printer says.
func selectorString(sel *metav1.LabelSelector) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "<invalid>"
	}
	return s.String()
}

// int32Value is *p, or def when p is nil.
func int32Value(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
