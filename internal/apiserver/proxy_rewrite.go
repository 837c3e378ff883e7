package apiserver

import (
	"compress/flate"
	"compress/gzip"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// What pods/proxy and services/proxy do to a backend's answer, as
// upstream's proxy does, so that a web page served through the API links
// to itself through the API:
//
//   - a GET or HEAD of ".../proxy" without a trailing slash is redirected
//     (301) to ".../proxy/", so that the page's relative links resolve
//     under the proxy;
//   - absolute-path links in an HTML page ("/x") and a redirect's Location
//     that point at the backend are prefixed with the proxy path
//     ("/api/v1/namespaces/ns/pods/name:port/proxy/x");
//   - the backend's CORS headers are dropped: the page is now the API
//     server's origin.
//
// The page is rewritten as it streams (one tag at a time, each at most
// maxHTMLToken bytes), never held whole: a backend cannot make the server
// buffer it. A compressed page is decompressed and sent plain.

// maxHTMLToken bounds one HTML token (a tag with its attributes, or a run
// of text) that the rewriter holds.
const maxHTMLToken = 1 << 20

// redirectToProxyRoot answers a GET or HEAD of ".../proxy" with a 301 to
// ".../proxy/" and reports whether it did.
func redirectToProxyRoot(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasSuffix(r.URL.Path, "/proxy") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	loc := r.URL.Path + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusMovedPermanently)
	return true
}

// linkRewriter is the transport of a workload proxy request whose client
// asked for clientHost and whose answers are rewritten under prefix.
type linkRewriter struct {
	prefix     string // the request's path up to and with "/proxy"
	clientHost string // the Host the client asked the API server for
	next       http.RoundTripper
}

func (t *linkRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	uri := path.Join(t.prefix, req.URL.EscapedPath())
	if strings.HasSuffix(req.URL.Path, "/") {
		uri += "/"
	}
	req.Header.Set("X-Forwarded-Uri", uri)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			resp.Header.Del(k)
		}
	}
	backend := req.URL.Host
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			resp.Header.Set("Location", t.rewrite(u, backend))
		}
		return resp, nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/html" || req.Method == http.MethodHead {
		return resp, nil
	}
	var body io.Reader
	switch resp.Header.Get("Content-Encoding") {
	case "":
		body = resp.Body
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		body = zr
	case "deflate":
		body = flate.NewReader(resp.Body)
	default:
		return resp, nil // an encoding we cannot read: passed through as it is
	}
	pr, pw := io.Pipe()
	orig := resp.Body
	go func() {
		defer orig.Close()
		pw.CloseWithError(rewriteHTML(pw, body, func(u *url.URL) string { return t.rewrite(u, backend) }))
	}()
	resp.Body = pr
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	return resp, nil
}

// rewrite returns u as the client must follow it: a link to an absolute
// path on the backend (or on the host the client asked) goes under the
// proxy prefix; relative links and links to other hosts stay as they are.
func (t *linkRewriter) rewrite(u *url.URL, backend string) string {
	if (u.Host != "" && u.Host != backend && u.Host != t.clientHost) || !strings.HasPrefix(u.Path, "/") {
		return u.String()
	}
	out := *u
	out.Scheme, out.Host, out.User = "", "", nil
	if strings.HasPrefix(out.Path, t.prefix+"/") || out.Path == t.prefix {
		return out.String()
	}
	p := path.Join(t.prefix, out.Path)
	if strings.HasSuffix(out.Path, "/") {
		p += "/"
	}
	out.Path, out.RawPath = p, ""
	return out.String()
}

// urlAttrs are the attributes of each HTML element that hold a URL.
var urlAttrs = map[atom.Atom][]string{
	atom.A: {"href"}, atom.Applet: {"codebase"}, atom.Area: {"href"}, atom.Audio: {"src"},
	atom.Base: {"href"}, atom.Blockquote: {"cite"}, atom.Body: {"background"}, atom.Button: {"formaction"},
	atom.Command: {"icon"}, atom.Del: {"cite"}, atom.Embed: {"src"}, atom.Form: {"action"},
	atom.Frame: {"longdesc", "src"}, atom.Head: {"profile"}, atom.Html: {"manifest"},
	atom.Iframe: {"longdesc", "src"}, atom.Img: {"longdesc", "src", "usemap"},
	atom.Input: {"src", "usemap", "formaction"}, atom.Ins: {"cite"}, atom.Link: {"href"},
	atom.Object: {"classid", "codebase", "data", "usemap"}, atom.Q: {"cite"}, atom.Script: {"src"},
	atom.Source: {"src"}, atom.Video: {"poster", "src"},
}

// rewriteHTML copies an HTML document from r to w, token by token, with
// the URL attributes of start tags passed through rewrite. A token longer
// than maxHTMLToken ends the copy with an error.
func rewriteHTML(w io.Writer, r io.Reader, rewrite func(*url.URL) string) error {
	z := html.NewTokenizer(r)
	z.SetMaxBuf(maxHTMLToken)
	for {
		tt := z.Next()
		var err error
		switch tt {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				return nil
			}
			return z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if attrs, ok := urlAttrs[tok.DataAtom]; ok {
				for i, a := range tok.Attr {
					if !slices.Contains(attrs, a.Key) {
						continue
					}
					if u, perr := url.Parse(a.Val); perr == nil {
						tok.Attr[i].Val = rewrite(u)
					}
				}
				_, err = io.WriteString(w, tok.String())
			} else {
				_, err = w.Write(z.Raw())
			}
		default:
			_, err = w.Write(z.Raw())
		}
		if err != nil {
			return err
		}
	}
}
