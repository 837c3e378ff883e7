package garbagecollector

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// HoldEvents makes every informer event pass through hold before it
// reaches the graph (see Controller.hold). Call it before Start.
func HoldEvents(c *Controller, hold func(schema.GroupVersionKind, *metav1.PartialObjectMetadata)) {
	c.hold = hold
}

// ObservedOwners returns the owner uids of the object uid as the graph
// last observed them, and whether an informer has shown the object at all.
func ObservedOwners(c *Controller, uid types.UID) ([]types.UID, bool) {
	s, ok := c.graph.get(uid)
	if !ok || s.virtual {
		return nil, false
	}
	var out []types.UID
	for _, r := range s.owners {
		out = append(out, r.UID)
	}
	return out, true
}
