package volume

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// PodFieldValue returns a pod metadata field as the downward API renders
// it: metadata.name, metadata.namespace, metadata.uid, metadata.labels and
// metadata.annotations (all entries as sorted `key="value"` lines, no
// trailing newline), and one entry by subscript, metadata.labels['k'] (""
// when absent). Other paths are the caller's (envvars resolves spec.* and
// status.*) and fail here with upstream's "unsupported fieldPath" text.
func PodFieldValue(pod *v1.Pod, fieldPath string) (string, error) {
	if path, key, ok := splitSubscriptedPath(fieldPath); ok {
		switch path {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
		}
	}
	switch fieldPath {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

// splitSubscriptedPath splits "metadata.labels['k']" into
// ("metadata.labels", "k", true); anything else gives ok false.
func splitSubscriptedPath(fieldPath string) (path, key string, ok bool) {
	s, found := strings.CutSuffix(fieldPath, "']")
	if !found {
		return fieldPath, "", false
	}
	path, key, found = strings.Cut(s, "['")
	if !found || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// formatMap renders a map as the downward API's labels/annotations file:
// one `key="value"` line per entry (value Go-quoted), sorted by key.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// ContainerResourceValue returns a container resource for the downward API
// (resourceFieldRef), divided by the selector's divisor (default 1) and
// rounded up, as upstream does. fs.ContainerName picks the container from
// the pod (regular, init or ephemeral); when empty, c is used. Limits a
// container does not set for cpu, memory and ephemeral-storage default to
// the node's allocatable amount.
func ContainerResourceValue(fs *v1.ResourceFieldSelector, pod *v1.Pod, c *v1.Container, nodeAllocatable v1.ResourceList) (string, error) {
	if fs.ContainerName != "" {
		found := findContainer(pod, fs.ContainerName)
		if found == nil {
			return "", fmt.Errorf("container %s not found", fs.ContainerName)
		}
		c = found
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef %s: no container named", fs.Resource)
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	what, name, ok := strings.Cut(fs.Resource, ".")
	if !ok || (what != "limits" && what != "requests") {
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	rn := v1.ResourceName(name)
	switch {
	case rn == v1.ResourceCPU, rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage,
		strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
	default:
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	var q resource.Quantity
	if what == "limits" {
		if v, ok := c.Resources.Limits[rn]; ok {
			q = v
		} else if rn == v1.ResourceCPU || rn == v1.ResourceMemory || rn == v1.ResourceEphemeralStorage {
			q = nodeAllocatable[rn]
		}
	} else {
		q = c.Resources.Requests[rn]
	}
	if rn == v1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

func findContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return (*v1.Container)(&pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		}
	}
	return nil
}
