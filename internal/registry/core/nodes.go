package core

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Node role labels that `kubectl get nodes` shows under ROLES.
const (
	nodeRoleLabelPrefix = "node-role.kubernetes.io/"
	nodeRoleLabel       = "kubernetes.io/role"
)

// Nodes describes core/v1 nodes: cluster-scoped, with a status
// subresource. Unlike most resources, a node may be created with its
// status (the kubelet registers that way), and nodes carry no generation.
func Nodes() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        corev1.SchemeGroupVersion,
		Name:                "nodes",
		Singular:            "node",
		Kind:                "Node",
		ShortNames:          []string{"no"},
		Namespaced:          false,
		New:                 func() runtime.Object { return &corev1.Node{} },
		NewList:             func() runtime.Object { return &corev1.NodeList{} },
		Status:              true,
		ReturnDeletedObject: true,
		Strategy: registry.Strategy{
			PrepareForCreate:       func(context.Context, runtime.Object) {},
			PrepareForUpdate:       prepareNodeForUpdate,
			PrepareForStatusUpdate: prepareNodeForStatusUpdate,
			Default:                defaultNodeObject,
			Validate:               validateNodeObject,
			ValidateUpdate:         validateNodeObjectUpdate,
			ValidateStatusUpdate:   validateNodeObjectStatusUpdate,
		},
		Table:  nodeTable(),
		Fields: nodeFields,
	}
}

// prepareNodeForUpdate keeps status; nodes have no generation.
func prepareNodeForUpdate(_ context.Context, obj, old runtime.Object) {
	n, ok := obj.(*corev1.Node)
	o, ok2 := old.(*corev1.Node)
	if !ok || !ok2 {
		return
	}
	n.Status = o.Status
}

// prepareNodeForStatusUpdate keeps spec and applies the status defaults
// (the server does not call Default on status writes).
func prepareNodeForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	defaultNodeStatus(&n.Status)
}

func defaultNodeObject(obj runtime.Object) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	// podCIDR is podCIDRs[0], as upstream's v1 conversion keeps it.
	if len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		n.Spec.PodCIDRs = []string{n.Spec.PodCIDR}
	} else if len(n.Spec.PodCIDRs) > 0 {
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	}
	defaultNodeStatus(&n.Status)
}

// defaultNodeStatus: allocatable defaults to capacity.
func defaultNodeStatus(s *corev1.NodeStatus) {
	if s.Allocatable == nil && s.Capacity != nil {
		s.Allocatable = s.Capacity.DeepCopy()
	}
	defaultResourceList(s.Capacity)
	defaultResourceList(s.Allocatable)
}

func validateNodeObject(obj runtime.Object) field.ErrorList {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	return validateNode(n)
}

// validateNode checks taints, pod CIDRs, and capacity and allocatable.
func validateNode(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, validateNodeTaints(n.Spec.Taints, spec.Child("taints"))...)
	errs = append(errs, validateNodeCIDRs(n.Spec.PodCIDRs, spec.Child("podCIDRs"))...)
	st := field.NewPath("status")
	for name, q := range n.Status.Capacity {
		errs = append(errs, qualifiedNameErrs(string(name), st.Child("capacity").Key(string(name)))...)
		errs = append(errs, validateResourceQuantity(name, q, st.Child("capacity").Key(string(name)))...)
	}
	for name, q := range n.Status.Allocatable {
		errs = append(errs, qualifiedNameErrs(string(name), st.Child("allocatable").Key(string(name)))...)
		errs = append(errs, validateResourceQuantity(name, q, st.Child("allocatable").Key(string(name)))...)
	}
	return errs
}

func validateNodeTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, t := range taints {
		p := fldPath.Index(i)
		errs = append(errs, qualifiedNameErrs(t.Key, p.Child("key"))...)
		if t.Value != "" {
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
			}
		}
		errs = append(errs, validateTaintEffect(t.Effect, p.Child("effect"))...)
		key := t.Key + ":" + string(t.Effect)
		if seen[key] {
			errs = append(errs, field.Duplicate(p, "taints must be unique by key and effect pair"))
		}
		seen[key] = true
	}
	return errs
}

// validateNodeCIDRs: valid CIDRs, at most one per IP family, no repeats.
func validateNodeCIDRs(cidrs []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	v4, v6 := 0, 0
	for i, c := range cidrs {
		e := validation.IsValidCIDR(fldPath.Index(i), c)
		errs = append(errs, e...)
		if seen.Has(c) {
			errs = append(errs, field.Duplicate(fldPath.Index(i), c))
		}
		seen.Insert(c)
		if len(e) == 0 {
			if ip, _, err := net.ParseCIDR(c); err == nil && ip.To4() != nil {
				v4++
			} else {
				v6++
			}
		}
	}
	if len(cidrs) > 2 || v4 > 1 || v6 > 1 {
		errs = append(errs, field.Invalid(fldPath, cidrs, "may specify no more than one CIDR for each IP family"))
	}
	return errs
}

// validateNodeObjectUpdate: as create, and podCIDRs and providerID may
// only be set once.
func validateNodeObjectUpdate(obj, old runtime.Object) field.ErrorList {
	n, ok := obj.(*corev1.Node)
	o, ok2 := old.(*corev1.Node)
	if !ok || !ok2 {
		return nil
	}
	errs := validateNode(n)
	spec := field.NewPath("spec")
	if len(o.Spec.PodCIDRs) > 0 && !equalStrings(o.Spec.PodCIDRs, n.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(spec.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if o.Spec.ProviderID != "" && o.Spec.ProviderID != n.Spec.ProviderID {
		errs = append(errs, field.Forbidden(spec.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

func validateNodeObjectStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	return validateNode(n)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// nodeFields is upstream's node field-selector set.
func nodeFields(obj runtime.Object) fields.Set {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return fields.Set{}
	}
	return fields.Set{
		"metadata.name":      n.Name,
		"spec.unschedulable": strconv.FormatBool(n.Spec.Unschedulable),
	}
}

// nodeTable is `kubectl get nodes`; the last five columns are -o wide's.
func nodeTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{
			registry.NameColumn,
			{Name: "Status", Type: "string", Description: "The status of the node"},
			{Name: "Roles", Type: "string", Description: "The roles of the node"},
			registry.AgeColumn,
			{Name: "Version", Type: "string", Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]},
			{Name: "Internal-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
			{Name: "External-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
			{Name: "OS-Image", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]},
			{Name: "Kernel-Version", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]},
			{Name: "Container-Runtime", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]},
		},
		Row: nodeRow,
	}
}

// nodeRow: STATUS is Ready, NotReady or Unknown (no Ready condition),
// with ",SchedulingDisabled" when cordoned; ROLES the sorted
// node-role.kubernetes.io/<role> label suffixes and kubernetes.io/role.
func nodeRow(obj runtime.Object) []interface{} {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	var status []string
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = append(status, "Ready")
			} else {
				status = append(status, "NotReady")
			}
			break
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	roles := strings.Join(nodeRoles(n.Labels), ",")
	if roles == "" {
		roles = "<none>"
	}
	info := n.Status.NodeInfo
	return []interface{}{
		n.Name, strings.Join(status, ","), roles, registry.Age(n), info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP), nodeAddress(n, corev1.NodeExternalIP),
		orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion),
	}
}

func nodeRoles(labels map[string]string) []string {
	roles := sets.New[string]()
	for k, v := range labels {
		switch {
		case strings.HasPrefix(k, nodeRoleLabelPrefix):
			if r := strings.TrimPrefix(k, nodeRoleLabelPrefix); r != "" {
				roles.Insert(r)
			}
		case k == nodeRoleLabel && v != "":
			roles.Insert(v)
		}
	}
	out := roles.UnsortedList()
	sort.Strings(out)
	return out
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}
