package audit

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Encode appends ev to dst as one line of JSON: what encoding/json
// writes for an Event, written field by field without reflection (every
// audited request pays for two or three of these). The bodies are
// compacted, as encoding/json does, but not HTML-escaped; a failure's
// Status with details is left to encoding/json.
func Encode(dst []byte, ev *Event) ([]byte, error) {
	dst = append(dst, '{')
	f := fields{dst: dst}
	f.str("kind", ev.Kind)
	f.str("apiVersion", ev.APIVersion)
	f.key("level")
	f.dst = appendString(f.dst, string(ev.Level))
	f.key("auditID")
	f.dst = appendString(f.dst, string(ev.AuditID))
	f.key("stage")
	f.dst = appendString(f.dst, string(ev.Stage))
	f.key("requestURI")
	f.dst = appendString(f.dst, ev.RequestURI)
	f.key("verb")
	f.dst = appendString(f.dst, ev.Verb)
	f.key("user")
	f.dst = appendUser(f.dst, &ev.User)
	if ev.ImpersonatedUser != nil {
		f.key("impersonatedUser")
		f.dst = appendUser(f.dst, ev.ImpersonatedUser)
	}
	if m := ev.AuthenticationMetadata; m != nil {
		f.key("authenticationMetadata")
		f.dst = append(f.dst, '{')
		g := fields{dst: f.dst}
		g.str("impersonationConstraint", m.ImpersonationConstraint)
		f.dst = append(g.dst, '}')
	}
	if len(ev.SourceIPs) > 0 {
		f.key("sourceIPs")
		f.dst = appendStrings(f.dst, ev.SourceIPs)
	}
	f.str("userAgent", ev.UserAgent)
	if r := ev.ObjectRef; r != nil {
		f.key("objectRef")
		f.dst = append(f.dst, '{')
		g := fields{dst: f.dst}
		g.str("resource", r.Resource)
		g.str("namespace", r.Namespace)
		g.str("name", r.Name)
		g.str("uid", string(r.UID))
		g.str("apiGroup", r.APIGroup)
		g.str("apiVersion", r.APIVersion)
		g.str("resourceVersion", r.ResourceVersion)
		g.str("subresource", r.Subresource)
		f.dst = append(g.dst, '}')
	}
	if st := ev.ResponseStatus; st != nil {
		f.key("responseStatus")
		var err error
		if f.dst, err = appendStatus(f.dst, st); err != nil {
			return dst, err
		}
	}
	if len(ev.RequestObject) > 0 {
		f.key("requestObject")
		if err := f.raw(ev.RequestObject); err != nil {
			return dst, err
		}
	}
	if len(ev.ResponseObject) > 0 {
		f.key("responseObject")
		if err := f.raw(ev.ResponseObject); err != nil {
			return dst, err
		}
	}
	f.key("requestReceivedTimestamp")
	f.dst = appendMicroTime(f.dst, ev.RequestReceivedTimestamp)
	f.key("stageTimestamp")
	f.dst = appendMicroTime(f.dst, ev.StageTimestamp)
	if len(ev.Annotations) > 0 {
		f.key("annotations")
		f.dst = append(f.dst, '{')
		for i, k := range slices.Sorted(maps.Keys(ev.Annotations)) {
			if i > 0 {
				f.dst = append(f.dst, ',')
			}
			f.dst = appendString(f.dst, k)
			f.dst = append(f.dst, ':')
			f.dst = appendString(f.dst, ev.Annotations[k])
		}
		f.dst = append(f.dst, '}')
	}
	return append(f.dst, '}', '\n'), nil
}

// fields appends the members of one object, with the commas between.
type fields struct {
	dst []byte
	n   int
}

func (f *fields) key(k string) {
	if f.n > 0 {
		f.dst = append(f.dst, ',')
	}
	f.n++
	f.dst = append(f.dst, '"')
	f.dst = append(f.dst, k...) // our keys need no escaping
	f.dst = append(f.dst, '"', ':')
}

// str appends a string member that is omitted when empty.
func (f *fields) str(k, v string) {
	if v == "" {
		return
	}
	f.key(k)
	f.dst = appendString(f.dst, v)
}

// raw appends a JSON document, compacted.
func (f *fields) raw(doc []byte) error {
	b := bytes.NewBuffer(f.dst) // appends to f.dst
	if err := json.Compact(b, doc); err != nil {
		return err
	}
	f.dst = b.Bytes()
	return nil
}

func appendUser(dst []byte, u *authnv1.UserInfo) []byte {
	dst = append(dst, '{')
	f := fields{dst: dst}
	f.str("username", u.Username)
	f.str("uid", u.UID)
	if len(u.Groups) > 0 {
		f.key("groups")
		f.dst = appendStrings(f.dst, u.Groups)
	}
	if len(u.Extra) > 0 {
		f.key("extra")
		f.dst = append(f.dst, '{')
		for i, k := range slices.Sorted(maps.Keys(u.Extra)) {
			if i > 0 {
				f.dst = append(f.dst, ',')
			}
			f.dst = appendString(f.dst, k)
			f.dst = append(f.dst, ':')
			if u.Extra[k] == nil {
				f.dst = append(f.dst, "null"...)
			} else {
				f.dst = appendStrings(f.dst, u.Extra[k])
			}
		}
		f.dst = append(f.dst, '}')
	}
	return append(f.dst, '}')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendStatus writes the Status of an answer: the code of a success,
// and of a failure its status, message and reason too; anything more
// (details, type or list metadata) goes through encoding/json.
func appendStatus(dst []byte, st *metav1.Status) ([]byte, error) {
	if st.Details != nil || st.TypeMeta != (metav1.TypeMeta{}) || st.ListMeta.RemainingItemCount != nil ||
		st.ListMeta.SelfLink != "" || st.ListMeta.ResourceVersion != "" || st.ListMeta.Continue != "" {
		b, err := json.Marshal(st)
		return append(dst, b...), err
	}
	dst = append(dst, `{"metadata":{}`...)
	f := fields{dst: dst, n: 1}
	f.str("status", st.Status)
	f.str("message", st.Message)
	f.str("reason", string(st.Reason))
	if st.Code != 0 {
		f.key("code")
		f.dst = strconv.AppendInt(f.dst, int64(st.Code), 10)
	}
	return append(f.dst, '}'), nil
}

// appendMicroTime writes t as metav1.MicroTime does: UTC, microseconds,
// null when zero.
func appendMicroTime(dst []byte, t metav1.MicroTime) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, metav1.RFC3339Micro)
	return append(dst, '"')
}

// appendString writes s as a JSON string the way encoding/json does:
// quotes, backslashes and control characters escaped, and also <, >, &,
// U+2028 and U+2029, and invalid UTF-8 replaced by U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
