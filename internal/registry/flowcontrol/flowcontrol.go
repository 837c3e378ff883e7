// Package flowcontrol holds the registry of the
// flowcontrol.apiserver.k8s.io API group: the FlowSchemas and
// PriorityLevelConfigurations that configure API Priority and Fairness.
// The dispatcher that obeys them is package internal/flowcontrol; this
// package only keeps the objects well formed, with upstream's defaults and
// messages.
package flowcontrol

import (
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of flowcontrol.apiserver.k8s.io/v1.
func Resources() []*registry.Resource {
	gv := flowcontrolv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GroupVersion: gv, Name: "flowschemas", Singular: "flowschema", Kind: "FlowSchema",
			New:     func() runtime.Object { return &flowcontrolv1.FlowSchema{} },
			NewList: func() runtime.Object { return &flowcontrolv1.FlowSchemaList{} },
			Status:  true,
			Strategy: registry.Strategy{
				Default:              defaultFlowSchema,
				Validate:             validateFlowSchema,
				ValidateUpdate:       func(obj, _ runtime.Object) field.ErrorList { return validateFlowSchema(obj) },
				ValidateStatusUpdate: validateFlowSchemaStatusUpdate,
			},
			Table: flowSchemaTable,
		},
		{
			GroupVersion: gv, Name: "prioritylevelconfigurations", Singular: "prioritylevelconfiguration", Kind: "PriorityLevelConfiguration",
			New:     func() runtime.Object { return &flowcontrolv1.PriorityLevelConfiguration{} },
			NewList: func() runtime.Object { return &flowcontrolv1.PriorityLevelConfigurationList{} },
			Status:  true,
			Strategy: registry.Strategy{
				Default:              defaultPriorityLevel,
				Validate:             validatePriorityLevel,
				ValidateUpdate:       func(obj, _ runtime.Object) field.ErrorList { return validatePriorityLevel(obj) },
				ValidateStatusUpdate: validatePriorityLevelStatusUpdate,
			},
			Table: priorityLevelTable,
		},
	}
}

// defaultFlowSchema: matchingPrecedence 1000 when unset, as upstream.
func defaultFlowSchema(obj runtime.Object) {
	if fs, ok := obj.(*flowcontrolv1.FlowSchema); ok && fs.Spec.MatchingPrecedence == 0 {
		fs.Spec.MatchingPrecedence = 1000
	}
}

// defaultPriorityLevel applies upstream's v1 defaults: 30 shares for a
// Limited level and 0 for the exempt one, lendablePercent 0, and queuing
// of 64 queues, hands of 8 and queues of 50.
func defaultPriorityLevel(obj runtime.Object) {
	pl, ok := obj.(*flowcontrolv1.PriorityLevelConfiguration)
	if !ok {
		return
	}
	if e := pl.Spec.Exempt; e != nil {
		if e.NominalConcurrencyShares == nil {
			e.NominalConcurrencyShares = i32(0)
		}
		if e.LendablePercent == nil {
			e.LendablePercent = i32(0)
		}
	}
	l := pl.Spec.Limited
	if l == nil {
		return
	}
	if l.NominalConcurrencyShares == nil {
		l.NominalConcurrencyShares = i32(30)
	}
	if l.LendablePercent == nil {
		l.LendablePercent = i32(0)
	}
	if q := l.LimitResponse.Queuing; q != nil {
		if q.HandSize == 0 {
			q.HandSize = 8
		}
		if q.Queues == 0 {
			q.Queues = 64
		}
		if q.QueueLengthLimit == 0 {
			q.QueueLengthLimit = 50
		}
	}
}

func i32(v int32) *int32 { return &v }
