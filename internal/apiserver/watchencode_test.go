package apiserver

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/storage"
)

// asStored renders an event's object as it is.
func asStored(ev watch.Event) (runtime.Object, error) { return ev.Object, nil }

func testPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", ResourceVersion: "7", Annotations: map[string]string{"html": "<a href='x'>&</a>", "unicode": "é\u2028ü"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo \"hi\"\n"}}}},
	}
}

// TestWatchFrameMatchesStreamEncoder checks that the frames built around
// an object's bytes are the bytes the stream encoder writes, for objects
// whose lengths take one to three bytes as varints.
func TestWatchFrameMatchesStreamEncoder(t *testing.T) {
	objects := map[string]runtime.Object{
		"status": &metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusFailure},
		"pod":    testPod(),
		"big": &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "big"}, Data: map[string]string{"d": strings.Repeat("<x>", 100<<10)}},
	}
	for _, mt := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		for _, typ := range []watch.EventType{watch.Added, watch.Modified, watch.Deleted, watch.Bookmark, watch.Error, "CUSTOM\""} {
			for name, o := range objects {
				t.Run(fmt.Sprintf("%s/%s/%s", mt, typ, name), func(t *testing.T) {
					testWatchFrame(t, mt, typ, o)
				})
			}
		}
	}
}

func testWatchFrame(t *testing.T, mt string, typ watch.EventType, o runtime.Object) {
	format := outputFormat{info: mediaInfo(mt)}
	enc := newWatchEncoder(format, nil, asStored)
	got, err := enc.encode(watch.Event{Type: typ, Object: o})
	if err != nil {
		t.Fatal(err)
	}
	var obj, want bytes.Buffer
	if err := format.info.Serializer.Encode(o, &obj); err != nil {
		t.Fatal(err)
	}
	ev := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: obj.Bytes()}}
	if err := format.info.StreamSerializer.Serializer.Encode(ev, format.info.StreamSerializer.Framer.NewFrameWriter(&want)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("frame:\n%.300q\nwant the stream encoder's\n%.300q", got, want.Bytes())
	}
}

// TestWatchEncoderShares checks that watches of one format encode a
// shared object once and write the same bytes, that other formats and
// event types get frames of their own, and that tables are not shared.
func TestWatchEncoderShares(t *testing.T) {
	encodes := 0
	counting := func(ev watch.Event) (runtime.Object, error) {
		encodes++
		return ev.Object, nil
	}
	json := outputFormat{info: mediaInfo("application/json")}
	proto := outputFormat{info: mediaInfo("application/vnd.kubernetes.protobuf")}
	table := outputFormat{info: mediaInfo("application/json"), target: asTable}
	so := &storage.SharedObject{Object: testPod(), Encodings: new(storage.Encodings)}
	added := watch.Event{Type: watch.Added, Object: so}

	var frames [][]byte
	for i := 0; i < 3; i++ {
		f, err := newWatchEncoder(json, nil, counting).encode(added)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if encodes != 1 {
		t.Errorf("3 JSON watches encoded the object %d times, want 1", encodes)
	}
	for i, f := range frames[1:] {
		if &f[0] != &frames[0][0] {
			t.Errorf("watch %d wrote bytes of its own, want the shared frame", i+1)
		}
	}
	pf, err := newWatchEncoder(proto, nil, counting).encode(added)
	if err != nil {
		t.Fatal(err)
	}
	if encodes != 2 || bytes.Equal(pf, frames[0]) {
		t.Errorf("protobuf watch: %d encodes in all, want 2, and a frame of its own", encodes)
	}
	mf, err := newWatchEncoder(json, nil, counting).encode(watch.Event{Type: watch.Modified, Object: so})
	if err != nil {
		t.Fatal(err)
	}
	if encodes != 3 || !strings.HasPrefix(string(mf), `{"type":"MODIFIED"`) {
		t.Errorf("MODIFIED of the same object: %d encodes in all, want 3; frame starts %q", encodes, mf[:20])
	}
	tenc := newWatchEncoder(table, nil, counting)
	if tenc.shareable {
		t.Errorf("a table watch shares its frames")
	}
	if _, err := tenc.encode(added); err != nil {
		t.Fatal(err)
	}
	if _, err := tenc.encode(added); err != nil {
		t.Fatal(err)
	}
	if encodes != 5 {
		t.Errorf("a table watch encoding twice: %d encodes in all, want 5", encodes)
	}
}

// TestWatchEncoderLetsLargeBuffersGo checks that a watch keeps no copy of
// a large event once it has been encoded.
func TestWatchEncoderLetsLargeBuffersGo(t *testing.T) {
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "big"}, Data: map[string]string{"d": strings.Repeat("x", 1<<20)}}
	for _, shared := range []bool{false, true} {
		enc := newWatchEncoder(outputFormat{info: mediaInfo("application/json")}, nil, asStored)
		var obj runtime.Object = cm
		if shared {
			obj = &storage.SharedObject{Object: cm, Encodings: new(storage.Encodings)}
		}
		f, err := enc.encode(watch.Event{Type: watch.Added, Object: obj})
		if err != nil || len(f) < 1<<20 {
			t.Fatalf("shared=%v: %d bytes, %v", shared, len(f), err)
		}
		if enc.obj.Cap() > scratchLimit || enc.frame.Cap() > scratchLimit {
			t.Errorf("shared=%v: the watch keeps %d + %d bytes of scratch after a 1 MiB event", shared, enc.obj.Cap(), enc.frame.Cap())
		}
	}
}

// BenchmarkWatchEncode measures writing one pod event to watches: "own"
// encodes it for one watch alone (events from etcd), "shared-1" is one
// watch of an event from the watch cache (the encoding is made and
// cached, and used once), "shared-100" is 100 watches of the same event.
func BenchmarkWatchEncode(b *testing.B) {
	for _, mt := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		format := outputFormat{info: mediaInfo(mt)}
		for _, c := range []struct {
			name     string
			watchers int
			shared   bool
		}{{"own", 1, false}, {"shared-1", 1, true}, {"shared-100", 100, true}} {
			b.Run(mt[strings.LastIndex(mt, "/")+1:]+"/"+c.name, func(b *testing.B) {
				encs := make([]*watchEncoder, c.watchers)
				for i := range encs {
					encs[i] = newWatchEncoder(format, nil, asStored)
				}
				pod := testPod()
				b.ReportAllocs()
				for b.Loop() {
					var obj runtime.Object = pod
					if c.shared {
						obj = &storage.SharedObject{Object: pod, Encodings: new(storage.Encodings)}
					}
					for _, enc := range encs {
						if _, err := enc.encode(watch.Event{Type: watch.Modified, Object: obj}); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
