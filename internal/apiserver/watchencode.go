package apiserver

import (
	"bytes"
	"encoding/binary"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/storage"
)

// watchEncoder turns the events of one watch into frames of its
// negotiated stream format (a newline-ended JSON WatchEvent, or a
// length-prefixed protobuf one).
//
// An event whose object comes from the watch cache (*storage.SharedObject)
// is encoded once per wire form and the frame shared by every watch that
// writes the same form, as upstream's cachingObject shares an object's
// serializations among watchers; skiff shares the whole frame, for the
// initial events of a watch and for replayed events as well. Other events
// (from etcd, tables, bookmarks, errors) are encoded for this watch alone,
// in scratch buffers that are let go once large so that an idle watch
// pins no copy of the last event.
type watchEncoder struct {
	objEnc    runtime.Encoder
	streamEnc runtime.Encoder
	framer    runtime.Framer
	// wire is how frames are built: around the object's bytes for JSON
	// and protobuf, by the stream encoder otherwise.
	wire frameKind
	// forms name this watch's frames, by event type, in an object's
	// shared encodings (made once: a key is boxed when it becomes an
	// interface); shareable is false when the rendering depends on the
	// request (tables).
	forms     map[watch.EventType]any
	shareable bool
	// render gives the object to encode for an event: converted to the
	// served version, as a table or as metadata.
	render func(watch.Event) (runtime.Object, error)

	obj, frame bytes.Buffer
}

// wireForm is the key of one frame in a storage.Encodings: two watches
// with equal forms write the same bytes for the same event.
type wireForm struct {
	mediaType string
	target    target
	// sv decides the conversion from the stored version.
	sv  *served
	typ watch.EventType
}

type frameKind int

const (
	frameByEncoder frameKind = iota
	frameJSON
	frameProtobuf
)

// scratchLimit is the largest scratch buffer a watch keeps between events.
const scratchLimit = 64 << 10

func newWatchEncoder(format outputFormat, sv *served, render func(watch.Event) (runtime.Object, error)) *watchEncoder {
	e := &watchEncoder{
		objEnc:    format.info.Serializer,
		streamEnc: format.info.StreamSerializer.Serializer,
		framer:    format.info.StreamSerializer.Framer,
		wire:      frameByEncoder,
		shareable: format.target == asObject || format.target == asPartialObjectMetadata,
		render:    render,
	}
	switch format.info.MediaType {
	case runtime.ContentTypeJSON:
		e.wire = frameJSON
	case runtime.ContentTypeProtobuf:
		e.wire = frameProtobuf
	}
	if e.shareable {
		e.forms = map[watch.EventType]any{}
		for _, typ := range []watch.EventType{watch.Added, watch.Modified, watch.Deleted} {
			e.forms[typ] = wireForm{mediaType: format.info.MediaType, target: format.target, sv: sv, typ: typ}
		}
	}
	return e
}

// encode returns the frame of ev. The bytes are valid until the next call
// and must not be modified (they may be shared with other watches).
func (e *watchEncoder) encode(ev watch.Event) ([]byte, error) {
	so, ok := ev.Object.(*storage.SharedObject)
	if !ok {
		return e.encodeOwn(ev)
	}
	if !e.shareable {
		ev.Object = so.Object
		return e.encodeOwn(ev)
	}
	form, ok := e.forms[ev.Type]
	if !ok {
		ev.Object = so.Object
		return e.encodeOwn(ev)
	}
	return so.Encodings.Get(form, func() ([]byte, error) {
		ev.Object = so.Object
		return e.encodeShared(ev)
	})
}

// encodeOwn encodes ev into the watch's scratch buffers.
func (e *watchEncoder) encodeOwn(ev watch.Event) ([]byte, error) {
	defer e.release()
	if err := e.encodeObject(ev); err != nil {
		return nil, err
	}
	e.frame.Reset()
	if err := e.appendFrame(&e.frame, ev.Type); err != nil {
		return nil, err
	}
	return e.frame.Bytes(), nil
}

// encodeShared encodes ev into a buffer of its own, to be shared.
func (e *watchEncoder) encodeShared(ev watch.Event) ([]byte, error) {
	defer e.release()
	if err := e.encodeObject(ev); err != nil {
		return nil, err
	}
	var frame bytes.Buffer
	frame.Grow(e.obj.Len() + 64) // the envelope: type, field tags, length
	if err := e.appendFrame(&frame, ev.Type); err != nil {
		return nil, err
	}
	return frame.Bytes(), nil
}

// encodeObject renders ev's object and encodes it into e.obj.
func (e *watchEncoder) encodeObject(ev watch.Event) error {
	obj, err := e.render(ev)
	if err != nil {
		return err
	}
	e.obj.Reset()
	return e.objEnc.Encode(obj, &e.obj)
}

// appendFrame writes the framed WatchEvent of type typ around the object
// in e.obj. For JSON and protobuf the frame is built around the object's
// bytes, which are the bytes the stream encoder would write after copying
// them (and, for JSON, scanning them again: encoding/json compacts a
// RawExtension, and the object's encoding is already compact and
// HTML-escaped); TestWatchFrameMatchesStreamEncoder holds them equal.
func (e *watchEncoder) appendFrame(dst *bytes.Buffer, typ watch.EventType) error {
	switch {
	case e.wire == frameJSON && plainEventType(typ):
		dst.WriteString(`{"type":"`)
		dst.WriteString(string(typ))
		dst.WriteString(`","object":`)
		dst.Write(bytes.TrimSuffix(e.obj.Bytes(), []byte("\n")))
		dst.WriteString("}\n")
		return nil
	case e.wire == frameProtobuf:
		// A length-delimited frame (4 bytes, big-endian) of the raw
		// (unenveloped) WatchEvent message: type = 1, object = 2, a
		// RawExtension whose raw = 1 holds the object.
		raw := e.obj.Bytes()
		inner := 1 + uvarintLen(len(raw)) + len(raw)
		size := 1 + uvarintLen(len(typ)) + len(typ) + 1 + uvarintLen(inner) + inner
		var b [4 + 3*binary.MaxVarintLen64 + 3]byte
		h := binary.BigEndian.AppendUint32(b[:0], uint32(size))
		h = append(h, 0x0a)
		h = binary.AppendUvarint(h, uint64(len(typ)))
		dst.Write(h)
		dst.WriteString(string(typ))
		h = append(b[:0], 0x12)
		h = binary.AppendUvarint(h, uint64(inner))
		h = append(h, 0x0a)
		h = binary.AppendUvarint(h, uint64(len(raw)))
		dst.Write(h)
		dst.Write(raw)
		return nil
	}
	out := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: e.obj.Bytes()}}
	return e.streamEnc.Encode(out, e.framer.NewFrameWriter(dst))
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// plainEventType reports whether typ is one of the watch event types,
// which JSON writes as they are.
func plainEventType(typ watch.EventType) bool {
	switch typ {
	case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark, watch.Error:
		return true
	}
	return false
}

// release lets scratch buffers that grew large go.
func (e *watchEncoder) release() {
	if e.obj.Cap() > scratchLimit {
		e.obj = bytes.Buffer{}
	}
	if e.frame.Cap() > scratchLimit {
		e.frame = bytes.Buffer{}
	}
}
