package storage

import "strings"

// Key returns the etcd key of an object: prefix + namespace + "/" + name
// for namespaced objects and prefix + name for cluster-scoped ones.
// prefix must end in "/" ("/registry/pods/").
func Key(prefix, namespace, name string) string {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if namespace == "" {
		return prefix + name
	}
	return prefix + namespace + "/" + name
}

// prefixEnd returns the first key after every key that starts with prefix
// (etcd's range end for a prefix).
func prefixEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	// All 0xff: the range runs to the end of the keyspace.
	return "\x00"
}

// isPrefix reports whether a list/watch key names a range of keys (ends in
// "/") rather than one key.
func isPrefix(key string) bool { return strings.HasSuffix(key, "/") }
