package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/types"
)

// MaxBodyBytes bounds a recorded request or response body: the API
// server's own limit on request bodies (3 MiB). A larger response is
// served all the same, and not recorded.
const MaxBodyBytes = 3 << 20

// BodyBuffer keeps the first Max bytes written to it and counts the rest.
type BodyBuffer struct {
	Max  int
	buf  []byte
	over bool
}

func (b *BodyBuffer) Write(p []byte) (int, error) {
	if b.over {
		return len(p), nil
	}
	if len(b.buf)+len(p) > b.Max {
		b.over, b.buf = true, nil
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Bytes returns what was kept; ok is false when more than Max bytes were
// written (and nothing is kept).
func (b *BodyBuffer) Bytes() (data []byte, ok bool) { return b.buf, !b.over }

// TeeBody returns a ReadCloser that reads rc and keeps what it reads in
// buf.
func TeeBody(rc io.ReadCloser, buf *BodyBuffer) io.ReadCloser {
	return &teeBody{ReadCloser: rc, buf: buf}
}

type teeBody struct {
	io.ReadCloser
	buf *BodyBuffer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		_, _ = t.buf.Write(p[:n])
	}
	return n, err
}

// RecordBody returns body as an event's requestObject or responseObject:
// body itself when it is a JSON object, without metadata.managedFields
// (in lists, the items'; in Tables, the rows' objects') when
// omitManagedFields. Otherwise it returns nil and why, for the
// AnnotationOmitted annotation.
func RecordBody(body []byte, complete bool, omitManagedFields bool) (json.RawMessage, string) {
	switch {
	case !complete:
		return nil, fmt.Sprintf("over %d bytes", MaxBodyBytes)
	case len(body) == 0:
		return nil, ""
	case !json.Valid(body):
		return nil, "not JSON"
	}
	if omitManagedFields && bytes.Contains(body, []byte(`"managedFields"`)) {
		if stripped, err := stripManagedFields(body); err == nil {
			return stripped, ""
		}
	}
	return body, ""
}

// stripManagedFields removes metadata.managedFields from an object, the
// items of a list and the row objects of a Table. The other fields are
// kept as they were, in the order encoding/json gives a map's keys.
func stripManagedFields(body []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, err
	}
	if err := stripObject(obj); err != nil {
		return nil, err
	}
	for _, key := range []string{"items", "rows"} {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		var elems []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			continue // not a list of objects: left as it is
		}
		for _, e := range elems {
			if key == "rows" {
				var rowObj map[string]json.RawMessage
				if json.Unmarshal(e["object"], &rowObj) != nil || rowObj == nil {
					continue
				}
				if err := stripObject(rowObj); err != nil {
					return nil, err
				}
				b, err := json.Marshal(rowObj)
				if err != nil {
					return nil, err
				}
				e["object"] = b
				continue
			}
			if err := stripObject(e); err != nil {
				return nil, err
			}
		}
		var err error
		if obj[key], err = json.Marshal(elems); err != nil {
			return nil, err
		}
	}
	return json.Marshal(obj)
}

func stripObject(obj map[string]json.RawMessage) error {
	raw, ok := obj["metadata"]
	if !ok {
		return nil
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(raw, &meta); err != nil || meta == nil {
		return nil // not an ObjectMeta: left as it is
	}
	if _, ok := meta["managedFields"]; !ok {
		return nil
	}
	delete(meta, "managedFields")
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	obj["metadata"] = b
	return nil
}

// ObjectMeta is what an event's objectRef takes from a written object.
type ObjectMeta struct {
	Name            string    `json:"name"`
	Namespace       string    `json:"namespace"`
	UID             types.UID `json:"uid"`
	ResourceVersion string    `json:"resourceVersion"`
}

// ObjectMetaOf returns the metadata of a JSON object, if body is one.
func ObjectMetaOf(body []byte) (ObjectMeta, bool) {
	var obj struct {
		Metadata ObjectMeta `json:"metadata"`
	}
	if len(body) == 0 || body[0] != '{' && !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return ObjectMeta{}, false
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return ObjectMeta{}, false
	}
	return obj.Metadata, true
}

// Fill sets what ref lacks from m, as upstream fills the objectRef from
// the request's object (a create's name is in its body, not its URL).
func (m ObjectMeta) Fill(ref *ObjectReference) {
	if ref.Namespace == "" {
		ref.Namespace = m.Namespace
	}
	if ref.Name == "" {
		ref.Name = m.Name
	}
	if ref.UID == "" {
		ref.UID = m.UID
	}
	if ref.ResourceVersion == "" {
		ref.ResourceVersion = m.ResourceVersion
	}
}
