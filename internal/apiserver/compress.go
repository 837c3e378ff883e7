package apiserver

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
)

// gzipThreshold is the response size above which GET and LIST answers are
// gzipped for clients that accept it, as upstream's API server does (128 KiB;
// smaller bodies are not worth the CPU).
const gzipThreshold = 128 << 10

// wantsGzip reports whether a response to r may be compressed: a get or
// list of a resource (or its status or scale) by a client that accepts
// gzip. Watches and streaming subresources are never compressed.
func wantsGzip(r *http.Request, info requestInfo) bool {
	if r.Method != http.MethodGet || !info.isResource || (info.verb != "get" && info.verb != "list") {
		return false
	}
	if info.sub != "" && info.sub != "status" && info.sub != "scale" {
		return false
	}
	for _, enc := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(enc), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
			return true
		}
	}
	return false
}

// gzipWriter holds a response back until it is larger than gzipThreshold,
// then sends it gzipped; a smaller response goes out as it is when the
// handler is done (finish).
type gzipWriter struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
	zw   *gzip.Writer
	err  error
}

func newGzipWriter(w http.ResponseWriter) *gzipWriter {
	return &gzipWriter{ResponseWriter: w, code: http.StatusOK}
}

// WriteHeader is deferred until the size of the body is known.
func (g *gzipWriter) WriteHeader(code int) { g.code = code }

func (g *gzipWriter) Write(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zw != nil {
		return g.zw.Write(p)
	}
	g.buf.Write(p)
	if g.buf.Len() <= gzipThreshold {
		return len(p), nil
	}
	h := g.ResponseWriter.Header()
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	h.Del("Content-Length")
	g.ResponseWriter.WriteHeader(g.code)
	g.zw, _ = gzip.NewWriterLevel(g.ResponseWriter, gzip.BestSpeed) // upstream's level 1
	if _, err := g.zw.Write(g.buf.Bytes()); err != nil {
		g.err = err
		return 0, err
	}
	g.buf.Reset()
	return len(p), nil
}

// finish sends what is held back, or ends the gzip stream.
func (g *gzipWriter) finish() {
	if g.zw != nil {
		_ = g.zw.Close()
		return
	}
	g.ResponseWriter.WriteHeader(g.code)
	if g.buf.Len() > 0 {
		_, _ = g.ResponseWriter.Write(g.buf.Bytes())
	}
}
