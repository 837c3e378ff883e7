package storage

import (
	"bytes"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// serializer encodes every stored value: Kubernetes protobuf (the "k8s\x00"
// envelope around a runtime.Unknown), over client-go's scheme, which holds
// every k8s.io/api type.
var serializer = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

// jsonSerializer encodes the values of resources stored as JSON (custom
// resources, whose objects are unstructured).
var jsonSerializer runtime.Serializer = unstructured.UnstructuredJSONScheme

// bufPool recycles encode buffers.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Transformer turns encoded values into what etcd stores and back:
// encryption at rest (internal/storage/encryption implements it).
type Transformer interface {
	// TransformToStorage returns the value to store for data.
	TransformToStorage(data []byte) ([]byte, error)
	// TransformFromStorage returns the encoded value of a stored one, and
	// whether the stored value is stale (written other than the way
	// TransformToStorage writes now, with an older key): an update then
	// writes even if the object did not change, as upstream's does.
	TransformFromStorage(data []byte) (out []byte, stale bool, err error)
}

// codec turns one resource's objects into etcd values and back. encode
// and decodePlain work on the encoded (plain) bytes; toStorage and
// fromStorage add and remove the transformer's layer; decode and
// decodeInto take the stored bytes, as etcd returns them.
type codec struct {
	gvk         schema.GroupVersionKind
	newFunc     func() runtime.Object
	transformer Transformer // nil: values are stored as encoded
	json        bool        // JSON (unstructured) rather than protobuf
}

// serializer returns the encoding of the resource's values.
func (c codec) serializer() runtime.Serializer {
	if c.json {
		return jsonSerializer
	}
	return serializer
}

// toStorage returns the value to store for data, which encode returned.
func (c codec) toStorage(data []byte) ([]byte, error) {
	if c.transformer == nil {
		return data, nil
	}
	out, err := c.transformer.TransformToStorage(data)
	if err != nil {
		return nil, fmt.Errorf("transform %s to storage: %w", c.gvk.Kind, err)
	}
	return out, nil
}

// fromStorage returns the encoded bytes of a stored value, and whether it
// is stale (see Transformer).
func (c codec) fromStorage(stored []byte) ([]byte, bool, error) {
	if c.transformer == nil {
		return stored, false, nil
	}
	out, stale, err := c.transformer.TransformFromStorage(stored)
	if err != nil {
		return nil, false, fmt.Errorf("transform %s from storage: %w", c.gvk.Kind, err)
	}
	return out, stale, nil
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
	if err := c.serializer().Encode(obj, buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.gvk.Kind, err)
	}
	return bytes.Clone(buf.Bytes()), nil
}

// decodeInto decodes a stored value into into, and sets its kind and its
// resourceVersion to rev.
func (c codec) decodeInto(stored []byte, into runtime.Object, rev int64) error {
	data, _, err := c.fromStorage(stored)
	if err != nil {
		return err
	}
	return c.decodePlainInto(data, into, rev)
}

// decodePlainInto is decodeInto for bytes that encode returned.
func (c codec) decodePlainInto(data []byte, into runtime.Object, rev int64) error {
	if _, _, err := c.serializer().Decode(data, nil, into); err != nil {
		return fmt.Errorf("decode %s: %w", c.gvk.Kind, err)
	}
	if !storedAsOtherVersion(into, c.gvk) {
		into.GetObjectKind().SetGroupVersionKind(c.gvk)
	}
	return setResourceVersion(into, rev)
}

// storedAsOtherVersion reports whether obj is a custom resource of gvk's
// group and kind stored as another version: written before its CRD's
// storage version changed. It keeps that version, for the server to
// convert it from.
func storedAsOtherVersion(obj runtime.Object, gvk schema.GroupVersionKind) bool {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return false
	}
	have := u.GroupVersionKind()
	return have.Version != "" && have.Version != gvk.Version && have.GroupKind() == gvk.GroupKind()
}

// decode decodes a stored value into a new object.
func (c codec) decode(stored []byte, rev int64) (runtime.Object, error) {
	obj := c.newFunc()
	if err := c.decodeInto(stored, obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

// decodePlain is decode for bytes that encode returned.
func (c codec) decodePlain(data []byte, rev int64) (runtime.Object, error) {
	obj := c.newFunc()
	if err := c.decodePlainInto(data, obj, rev); err != nil {
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
