package apiserver

import (
	"bytes"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// maxYAMLExpansion is how large a YAML body may grow once its aliases are
// expanded: the largest body the server reads.
const maxYAMLExpansion = maxBodyBytes

// checkYAMLExpansion refuses, with 413, a YAML body whose aliases would
// expand it past maxYAMLExpansion. The YAML decoders expand every alias
// into a copy, and go-yaml's own guard counts an alias of a scalar as
// half an alias: one anchored 1 MiB string and 400 aliases of it, a 1 MB
// body, took 3 GB and 14 s to decode. The document is parsed into nodes,
// where an alias is a pointer, and measured without being expanded. A
// body without '*' has no alias and is not parsed; one that does not
// parse is left to the decoder to refuse.
func checkYAMLExpansion(body []byte) error {
	if bytes.IndexByte(body, '*') < 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	sizes := map[*yaml.Node]int{}
	total := 0
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return nil // the end, or the decoder's error to report
		}
		total += expandedSize(&doc, sizes, 0)
		if total > maxYAMLExpansion {
			return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the YAML body expands past %d bytes through its aliases", maxYAMLExpansion))
		}
	}
}

// expandedSize is about how many bytes n stands for with its aliases
// expanded: its scalars' lengths, a few bytes for each node. sizes
// remembers each node's, so that a node aliased many times is measured
// once and the walk is linear in the document. The sum saturates past
// maxYAMLExpansion, and so does the depth of aliases of aliases.
func expandedSize(n *yaml.Node, sizes map[*yaml.Node]int, depth int) int {
	if n == nil || depth > 1000 {
		return maxYAMLExpansion + 1
	}
	if s, ok := sizes[n]; ok {
		return s
	}
	sizes[n] = maxYAMLExpansion + 1 // an alias cycle is refused
	s := len(n.Value) + 4
	if n.Kind == yaml.AliasNode {
		s = expandedSize(n.Alias, sizes, depth+1)
	}
	for _, c := range n.Content {
		s += expandedSize(c, sizes, depth+1)
		if s > maxYAMLExpansion {
			s = maxYAMLExpansion + 1
			break
		}
	}
	sizes[n] = s
	return s
}
