package customresource

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ErrWebhookConversion is returned by ToStored and FromStored of the
// versions of a CRD whose conversion strategy is Webhook when Resources
// was given no webhook client. The storage version itself is served.
var ErrWebhookConversion = errors.New("no conversion webhook client")

// converter converts objects between one served version and the storage
// version.
type converter struct {
	served, stored *version
	// byName holds the CRD's served versions: a stored object written
	// before the storage version changed is converted from its own.
	byName map[string]*version
	// webhook is set for strategy Webhook: webhookClient converts (upstream's
	// conversion webhook client, which checks what the webhook returns), or
	// every conversion fails when it is nil.
	webhook       bool
	webhookClient runtime.ObjectConvertor
}

// toStored converts an object of the served version to the storage
// version, as upstream's nopConverter (apiVersion rewritten, nothing
// else) followed by the coercion upstream's converter applies: the
// storage version's schema prunes what it does not know.
func (c *converter) toStored(obj runtime.Object) (runtime.Object, error) {
	return c.convert(obj, c.served, c.stored, false)
}

// fromStored converts a stored object to the served version. Upstream
// defaults an object read from storage by the schema of the version it
// was stored as (the storage version of its last write, which may differ
// from today's), then converts and coerces it by the served version's.
// An object stored as the served version is only defaulted: it is
// returned as it is when the schema has no defaults.
func (c *converter) fromStored(obj runtime.Object) (runtime.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("converting %T: not an unstructured object", obj)
	}
	from := c.stored
	if gv, err := schema.ParseGroupVersion(u.GetAPIVersion()); err == nil && gv.Version != from.gvk.Version && gv.Group == from.gvk.Group {
		if from = c.byName[gv.Version]; from == nil {
			// A version no longer served: converted without its schema.
			from = &version{gvk: c.stored.gvk.GroupKind().WithVersion(gv.Version), schema: &versionSchema{}}
		}
	}
	if from == c.served {
		if !from.schema.hasDefaults {
			return obj, nil
		}
		out := u.DeepCopy()
		from.schema.applyDefaults(out)
		return out, nil
	}
	return c.convert(obj, from, c.served, true)
}

func (c *converter) convert(obj runtime.Object, from, to *version, read bool) (runtime.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("converting %T: not an unstructured object", obj)
	}
	if c.webhook && c.webhookClient == nil {
		return nil, fmt.Errorf("converting %s to %s: %w", from.gvk.GroupVersion(), to.gvk.GroupVersion(), ErrWebhookConversion)
	}
	// Stored objects may be shared with the watch cache: work on a copy.
	out := u.DeepCopy()
	if out.Object == nil {
		out.Object = map[string]interface{}{}
	}
	if read {
		from.schema.applyDefaults(out)
	}
	if c.webhook {
		converted, err := c.webhookClient.ConvertToVersion(out, to.gvk.GroupVersion())
		if err != nil {
			return nil, err
		}
		if out, ok = converted.(*unstructured.Unstructured); !ok {
			return nil, fmt.Errorf("conversion webhook returned %T", converted)
		}
	} else {
		out.SetAPIVersion(to.gvk.GroupVersion().String())
	}
	to.schema.coerce(out.Object, false)
	return out, nil
}
