package apiserver

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/apps"
	"github.com/skiff-io/skiff/internal/registry/autoscaling"
	"github.com/skiff-io/skiff/internal/registry/batch"
	"github.com/skiff-io/skiff/internal/registry/certificates"
	"github.com/skiff-io/skiff/internal/registry/coordination"
	"github.com/skiff-io/skiff/internal/registry/core"
	"github.com/skiff-io/skiff/internal/registry/discovery"
	"github.com/skiff-io/skiff/internal/registry/events"
	"github.com/skiff-io/skiff/internal/registry/policy"
	"github.com/skiff-io/skiff/internal/registry/rbac"
	"github.com/skiff-io/skiff/internal/registry/scheduling"
)

func allResources() []*registry.Resource {
	var out []*registry.Resource
	for _, g := range [][]*registry.Resource{core.Resources(), apps.Resources(), batch.Resources(), autoscaling.Resources(),
		coordination.Resources(), discovery.Resources(), events.Resources(), policy.Resources(), scheduling.Resources(), rbac.Resources(),
		certificates.Resources()} {
		out = append(out, g...)
	}
	return out
}

// FuzzDecodeDefaultValidate feeds arbitrary bodies through what a create
// does before storage — decode (strict and lenient), default, prepare,
// metadata and type validation, table rows, field sets, conversion — for
// every served resource. Nothing may panic.
func FuzzDecodeDefaultValidate(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`))
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":"http"}]}}`))
	f.Add([]byte(`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"*/5 * * * *"}}`))
	f.Add([]byte(`{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h","annotations":{"autoscaling.alpha.kubernetes.io/metrics":"[{]"}}}`))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 1}\n"))
	resources := allResources()
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.Background()
		for _, res := range resources {
			for _, directive := range []string{metav1.FieldValidationStrict, metav1.FieldValidationIgnore} {
				for _, ct := range []string{"application/json", "application/yaml"} {
					obj, _, err := decodeWith(ct, directive, body, res.GroupVersionKind(), res.New(), nil)
					if err != nil {
						continue
					}
					sv := &served{res: res, stored: res}
					if res.Strategy.Default != nil {
						res.Strategy.Default(obj)
					}
					if res.Strategy.PrepareForCreate != nil {
						res.Strategy.PrepareForCreate(ctx, obj)
					} else {
						registry.DefaultPrepareForCreate(ctx, obj)
					}
					if m, err := meta.Accessor(obj); err == nil {
						_ = validateMeta(sv, m)
					}
					if res.Strategy.Validate != nil {
						_ = res.Strategy.Validate(obj)
					}
					if res.Strategy.ValidateUpdate != nil {
						_ = res.Strategy.ValidateUpdate(obj, res.New())
					}
					if res.Table != nil {
						_ = res.Table.Row(obj)
					}
					if res.Fields != nil {
						_ = res.Fields(obj)
					}
					if res.ToStored != nil {
						if st, err := res.ToStored(obj); err == nil && res.FromStored != nil {
							_, _ = res.FromStored(st)
						}
					}
				}
			}
		}
	})
}
