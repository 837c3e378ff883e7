package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// selectLabel and selectValue mark the ConfigMaps crwatch annotates.
	selectLabel = "crwatch"
	selectValue = "on"
	// seenAnnotation holds DataHash of the data crwatch last saw.
	seenAnnotation = "crwatch.skiff.io/seen"
	// fieldOwner is crwatch's field manager name.
	fieldOwner = "crwatch"
)

// reconciler writes seenAnnotation on the selected ConfigMaps.
type reconciler struct {
	client client.Client
	log    *slog.Logger
	merge  bool // write with a JSON merge patch instead of server-side apply
}

func (r *reconciler) setup(mgr ctrl.Manager) error {
	if err := ctrl.NewControllerManagedBy(mgr).Named("crwatch").For(&corev1.ConfigMap{}).Complete(r); err != nil {
		return fmt.Errorf("building controller: %w", err)
	}
	return nil
}

// Reconcile reads the ConfigMap from the manager's cache and, when it is
// selected and its annotation does not match its data, writes the
// annotation. It is level-triggered: a missed or repeated event changes
// nothing.
func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cm corev1.ConfigMap
	if err := r.client.Get(ctx, req.NamespacedName, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting configmap %s: %w", req.NamespacedName, err)
	}
	if cm.Labels[selectLabel] != selectValue {
		return ctrl.Result{}, nil
	}
	hash := DataHash(cm.Data)
	if cm.Annotations[seenAnnotation] == hash {
		return ctrl.Result{}, nil
	}
	if err := r.write(ctx, &cm, hash); err != nil {
		return ctrl.Result{}, err
	}
	r.log.Info("annotated", "configmap", req.NamespacedName.String(), "hash", hash, "merge", r.merge)
	return ctrl.Result{}, nil
}

// write sets the annotation through server-side apply (the configuration
// names only the annotation, so crwatch owns only that field) or through
// a merge patch.
func (r *reconciler) write(ctx context.Context, cm *corev1.ConfigMap, hash string) error {
	if r.merge {
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{seenAnnotation: hash}}})
		if err != nil {
			return err
		}
		if err := r.client.Patch(ctx, cm, client.RawPatch(types.MergePatchType, body), client.FieldOwner(fieldOwner)); err != nil {
			return fmt.Errorf("merge patch of configmap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		return nil
	}
	ac := corev1ac.ConfigMap(cm.Name, cm.Namespace).WithAnnotations(map[string]string{seenAnnotation: hash})
	if err := r.client.Apply(ctx, ac, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying configmap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}

// DataHash is the first 16 hex digits of the SHA-256 of the data's
// "key=value\n" lines in key order. The e2e test computes the same.
func DataHash(data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
