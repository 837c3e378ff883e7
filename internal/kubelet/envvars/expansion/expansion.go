// Package expansion implements Kubernetes' $(VAR) reference syntax, used in
// a container's env values, command, args and volumeMount subPathExpr.
//
// The rules, which Kubernetes users rely on and which this package keeps
// byte for byte:
//
//   - $(NAME) is replaced by the mapping's value for NAME;
//   - $$ is an escaped $, so $$(NAME) yields the literal $(NAME);
//   - a $ followed by anything else, a $ at the end, and an unterminated
//     $( are kept as written.
//
// It is a package of its own so that both envvars and volume (subPathExpr)
// can use it without importing each other.
package expansion

import (
	"strings"
	"unicode/utf8"
)

// Expand replaces the references in s using mapping, which is called once
// per $(NAME) reference with NAME and returns its replacement.
func Expand(s string, mapping func(name string) string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for i < len(s) {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch next := s[i+1]; next {
		case '$': // escaped operator
			b.WriteByte('$')
			i += 2
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 { // unterminated: keep "$(" and go on after it
				b.WriteString("$(")
				i += 2
				continue
			}
			b.WriteString(mapping(s[i+2 : i+2+end]))
			i += 2 + end + 1
		default: // not a reference: keep "$" and the character after it
			r, size := utf8.DecodeRuneInString(s[i+1:])
			b.WriteByte('$')
			b.WriteRune(r) // an invalid byte becomes U+FFFD, as upstream
			i += 1 + size
		}
	}
	return b.String()
}

// MappingFor returns a mapping that looks NAME up in the maps in order and
// leaves an undefined reference as written, $(NAME).
func MappingFor(maps ...map[string]string) func(string) string {
	return func(name string) string {
		for _, m := range maps {
			if v, ok := m[name]; ok {
				return v
			}
		}
		return "$(" + name + ")"
	}
}
