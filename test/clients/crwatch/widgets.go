package main

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// widgetGVK is the kind of the custom resource crwatch reconciles with
// --widgets; the e2e test installs its CustomResourceDefinition
// (testdata/crwatch-widget-crd.yaml).
var widgetGVK = schema.GroupVersionKind{Group: "crwatch.skiff.io", Version: "v1", Kind: "Widget"}

// widgetReconciler keeps, for every Widget, a ConfigMap of the same name
// holding its spec.data and owned by it (a controller ownerReference: the
// garbage collector deletes it with the Widget), and reports through the
// status subresource which generation and data it has seen.
type widgetReconciler struct {
	client client.Client
	log    *slog.Logger
}

func newWidget() *unstructured.Unstructured {
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(widgetGVK)
	return w
}

func (r *widgetReconciler) setup(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("widgets").For(newWidget()).Owns(&corev1.ConfigMap{}).Complete(r)
	if err != nil {
		return fmt.Errorf("building the widgets controller: %w", err)
	}
	return nil
}

// Reconcile applies the Widget's ConfigMap, then writes its status when
// the status does not say the current generation and data: level
// triggered, as the ConfigMap reconciler.
func (r *widgetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	w := newWidget()
	if err := r.client.Get(ctx, req.NamespacedName, w); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting widget %s: %w", req.NamespacedName, err)
	}
	if w.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	data, _, err := unstructured.NestedStringMap(w.Object, "spec", "data")
	if err != nil {
		return ctrl.Result{}, nil // the schema says a map of strings: nothing to do with anything else
	}
	owner := metav1ac.OwnerReference().WithAPIVersion(widgetGVK.GroupVersion().String()).WithKind(widgetGVK.Kind).
		WithName(w.GetName()).WithUID(w.GetUID()).WithController(true)
	cm := corev1ac.ConfigMap(w.GetName(), w.GetNamespace()).WithData(data).WithOwnerReferences(owner)
	if err := r.client.Apply(ctx, cm, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return ctrl.Result{}, fmt.Errorf("applying the configmap of widget %s: %w", req.NamespacedName, err)
	}
	hash := DataHash(data)
	seen, _, _ := unstructured.NestedString(w.Object, "status", "seen")
	observed, _, _ := unstructured.NestedInt64(w.Object, "status", "observedGeneration")
	if seen == hash && observed == w.GetGeneration() {
		return ctrl.Result{}, nil
	}
	if err := unstructured.SetNestedField(w.Object, hash, "status", "seen"); err != nil {
		return ctrl.Result{}, err
	}
	if err := unstructured.SetNestedField(w.Object, w.GetGeneration(), "status", "observedGeneration"); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.client.Status().Update(ctx, w, client.FieldOwner(fieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing the status of widget %s: %w", req.NamespacedName, err)
	}
	r.log.Info("widget status", "widget", req.NamespacedName.String(), "generation", w.GetGeneration(), "hash", hash)
	return ctrl.Result{}, nil
}
