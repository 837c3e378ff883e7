package apiserver

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

// codecs serializes every type of k8s.io/api in JSON, YAML and protobuf.
// skiff keeps no internal version, so nothing is converted on the way:
// objects carry their apiVersion and kind from storage or from the handler.
var codecs = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)

// target is what representation of an object a client asked for through
// the "as" parameter of its Accept header.
type target int

const (
	asObject target = iota
	asTable
	asPartialObjectMetadata
	asPartialObjectMetadataList
	asAPIGroupDiscoveryList
)

// outputFormat is the negotiated response encoding.
type outputFormat struct {
	info   runtime.SerializerInfo
	target target
	pretty bool
}

// negotiateOutput picks the response encoding from the Accept header, in
// the client's order of preference. ok is false when nothing acceptable is
// served (406).
func negotiateOutput(r *http.Request) (outputFormat, bool) {
	jsonOnly := r.Context().Value(jsonOnlyKey{}) != nil
	accept := r.Header.Get("Accept")
	pretty := isTrue(r.URL.Query().Get("pretty"))
	if accept == "" {
		return outputFormat{info: mediaInfo("application/json"), pretty: pretty}, true
	}
	for _, clause := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		switch mt {
		case "*/*", "application/*":
			mt = "application/json"
		}
		info := mediaInfo(mt)
		if info.MediaType == "" {
			continue
		}
		t := asObject
		if jsonOnly && params["as"] == "" && mt == runtime.ContentTypeProtobuf {
			continue // a custom resource has no protobuf form
		}
		if as := params["as"]; as != "" {
			g, v := params["g"], params["v"]
			switch {
			case as == "Table" && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
				t = asTable
			case as == "PartialObjectMetadata" && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
				t = asPartialObjectMetadata
			case as == "PartialObjectMetadataList" && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
				t = asPartialObjectMetadataList
			case as == "APIGroupDiscoveryList" && g == "apidiscovery.k8s.io" && v == "v2":
				t = asAPIGroupDiscoveryList
			default:
				continue // a representation we do not serve
			}
		}
		if params["pretty"] == "1" || params["pretty"] == "true" {
			pretty = true
		}
		return outputFormat{info: info, target: t, pretty: pretty}, true
	}
	return outputFormat{}, false
}

// jsonOnlyKey marks, in a request's context, a request for a resource
// without a protobuf form (registry.Resource.JSONOnly): its objects are
// neither read nor written as protobuf, while the meta.k8s.io forms of
// them (Table, PartialObjectMetadata) still are.
type jsonOnlyKey struct{}

// withJSONOnly marks r as a request for a resource without a protobuf
// form.
func withJSONOnly(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), jsonOnlyKey{}, true))
}

// mediaInfo returns the serializer for a media type, or a zero value.
func mediaInfo(mediaType string) runtime.SerializerInfo {
	for _, info := range codecs.SupportedMediaTypes() {
		if info.MediaType == mediaType {
			return info
		}
	}
	return runtime.SerializerInfo{}
}

// encoder returns the encoder of the format.
func (f outputFormat) encoder() runtime.Encoder {
	if f.pretty && f.info.PrettySerializer != nil {
		return f.info.PrettySerializer
	}
	return f.info.Serializer
}

// contentType is the Content-Type header for the format, with the "as"
// parameters echoed back as upstream does.
func (f outputFormat) contentType() string {
	ct := f.info.MediaType
	switch f.target {
	case asTable:
		ct += ";as=Table;v=v1;g=meta.k8s.io"
	case asPartialObjectMetadata:
		ct += ";as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
	case asPartialObjectMetadataList:
		ct += ";as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
	case asAPIGroupDiscoveryList:
		ct += ";g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	}
	return ct
}

// inputSerializer returns the decoder for a request body's Content-Type,
// strict or not. ok is false for media types we do not read (415).
func inputSerializer(contentType string, strict bool) (runtime.Decoder, string, bool) {
	mt := "application/json"
	if contentType != "" {
		var err error
		mt, _, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, "", false
		}
	}
	info := mediaInfo(mt)
	if info.MediaType == "" {
		return nil, mt, false
	}
	if strict && info.StrictSerializer != nil {
		return info.StrictSerializer, mt, true
	}
	return info.Serializer, mt, true
}

// coreV1 is the group version query parameters are decoded in.
var coreV1 = schema.GroupVersion{Version: "v1"}
