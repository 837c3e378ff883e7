package core

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// PodTemplates describes core/v1 podtemplates: namespaced, without status,
// the template's pod spec defaulted and validated as every workload's
// template is (DefaultPodTemplateSpec, ValidatePodTemplateSpec), and
// metadata.generation counting changes to the template, as upstream.
func PodTemplates() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "podtemplates",
		Singular:     "podtemplate",
		Kind:         "PodTemplate",
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.PodTemplate{} },
		NewList:      func() runtime.Object { return &corev1.PodTemplateList{} },
		Strategy: registry.Strategy{
			// A PodTemplate has no spec, so the default generation
			// handling (which looks for one) does not apply.
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				if pt, ok := obj.(*corev1.PodTemplate); ok {
					pt.Generation = 1
				}
			},
			PrepareForUpdate: preparePodTemplateForUpdate,
			Default:          defaultPodTemplate,
			Validate: func(obj runtime.Object) field.ErrorList {
				pt, ok := obj.(*corev1.PodTemplate)
				if !ok {
					return metaWrongType(obj, "v1.PodTemplate")
				}
				return ValidatePodTemplateSpec(&pt.Template, field.NewPath("template"))
			},
			ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList {
				pt, ok := obj.(*corev1.PodTemplate)
				if !ok {
					return metaWrongType(obj, "v1.PodTemplate")
				}
				return ValidatePodTemplateSpec(&pt.Template, field.NewPath("template"))
			},
		},
		Table: podTemplateTable(),
	}
}

// defaultPodTemplate defaults the template's pod spec (upstream's
// SetObjectDefaults_PodTemplate).
func defaultPodTemplate(obj runtime.Object) {
	if pt, ok := obj.(*corev1.PodTemplate); ok {
		DefaultPodTemplateSpec(&pt.Template)
	}
}

// preparePodTemplateForUpdate bumps metadata.generation when the template
// changed, comparing after defaulting so that an omitted default is no
// change; otherwise the stored generation stays, whatever the client sent.
func preparePodTemplateForUpdate(_ context.Context, obj, old runtime.Object) {
	pt, ok1 := obj.(*corev1.PodTemplate)
	o, ok2 := old.(*corev1.PodTemplate)
	if !ok1 || !ok2 {
		return
	}
	DefaultPodTemplateSpec(&pt.Template)
	pt.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(pt.Template, o.Template) {
		pt.Generation = o.Generation + 1
	}
}

// podTemplateTable is upstream's podtemplate printer: no age column, and
// the containers and images shown without -o wide.
func podTemplateTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{
			registry.NameColumn,
			{Name: "Containers", Type: "string", Description: "Names of each container in the template."},
			{Name: "Images", Type: "string", Description: "Images referenced by each container in the template."},
			{Name: "Pod Labels", Type: "string", Description: "The labels for the pod template."},
		},
		Row: func(obj runtime.Object) []interface{} {
			pt, ok := obj.(*corev1.PodTemplate)
			if !ok {
				return []interface{}{"", "", "", ""}
			}
			names, images := containerCells(pt.Template.Spec.Containers)
			return []interface{}{pt.Name, names, images, labels.FormatLabels(pt.Template.Labels)}
		},
	}
}

// containerCells renders a template's container names and images as
// upstream's printers do: comma-separated, in order.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}
