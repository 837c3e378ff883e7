package storage

import (
	"bytes"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// serializer encodes every stored value: Kubernetes protobuf (the "k8s\x00"
// envelope around a runtime.Unknown), over client-go's scheme, which holds
// every k8s.io/api type.
var serializer = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

// bufPool recycles encode buffers.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// codec turns one resource's objects into etcd values and back.
type codec struct {
	gvk     schema.GroupVersionKind
	newFunc func() runtime.Object
}

// encode prepares obj for storage (its kind set, resourceVersion and
// selfLink cleared: a stored value never carries its own revision) and
// returns its bytes. It mutates obj, which the caller owns.
func (c codec) encode(obj runtime.Object) ([]byte, error) {
	if obj == nil {
		return nil, fmt.Errorf("encode: nil object")
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	m.SetResourceVersion("")
	m.SetSelfLink("")
	obj.GetObjectKind().SetGroupVersionKind(c.gvk)
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if err := serializer.Encode(obj, buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.gvk.Kind, err)
	}
	return bytes.Clone(buf.Bytes()), nil
}

// decodeInto decodes data into into, and sets its kind and its
// resourceVersion to rev.
func (c codec) decodeInto(data []byte, into runtime.Object, rev int64) error {
	if _, _, err := serializer.Decode(data, nil, into); err != nil {
		return fmt.Errorf("decode %s: %w", c.gvk.Kind, err)
	}
	into.GetObjectKind().SetGroupVersionKind(c.gvk)
	return setResourceVersion(into, rev)
}

// decode decodes data into a new object.
func (c codec) decode(data []byte, rev int64) (runtime.Object, error) {
	obj := c.newFunc()
	if err := c.decodeInto(data, obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

func setResourceVersion(obj runtime.Object, rev int64) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	m.SetResourceVersion(formatRV(rev))
	return nil
}
