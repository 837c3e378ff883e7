package apiserver

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Bounds on the shape of a patch, for the costs that size alone does not
// bound. The libraries that apply patches are quadratic in two places: a
// JSON merge patch in its nesting (a 9,000-deep patch of 36 KB allocated
// 1.9 GB and took 8 s), and a strategic merge patch in the number of
// objects of a list it merges by key (8,000 containers took 3 s, and the
// 150,000 that fit in a body would take hours of CPU, long after the
// request timed out). Objects are neither this deep nor these lists this
// long; upstream has no such bounds.
const (
	// maxPatchDepth is how deep a patch document may nest objects and
	// arrays.
	maxPatchDepth = 100
	// maxPatchListObjects is how many objects one list of a patch may
	// hold.
	maxPatchListObjects = 2000
)

// checkPatchShape refuses a JSON document (a patch) that nests deeper than
// maxPatchDepth or, if listObjects, has a list of more than
// maxPatchListObjects objects, with 413. It reads the document once
// without decoding it; a document that is not valid JSON is left to the
// decoder to refuse.
func checkPatchShape(doc []byte, listObjects bool) error {
	// objects[i] counts the objects in the array open at depth i+1, or is
	// -1 when that container is an object.
	var objects []int
	inString, escaped := false, false
	for _, c := range doc {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if len(objects) == maxPatchDepth {
				return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the patch nests deeper than %d levels", maxPatchDepth))
			}
			if listObjects && c == '{' && len(objects) > 0 && objects[len(objects)-1] >= 0 {
				objects[len(objects)-1]++
				if n := objects[len(objects)-1]; n > maxPatchListObjects {
					return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("a list in the patch holds more than %d objects", maxPatchListObjects))
				}
			}
			if c == '{' {
				objects = append(objects, -1)
			} else {
				objects = append(objects, 0)
			}
		case '}', ']':
			if len(objects) > 0 {
				objects = objects[:len(objects)-1]
			}
		}
	}
	return nil
}

// checkObjectShape is checkPatchShape for a decoded document (an apply
// configuration): how deep it nests, and how many objects its lists hold.
func checkObjectShape(v any) error {
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		switch t := v.(type) {
		case map[string]any:
			if depth == maxPatchDepth {
				return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the patch nests deeper than %d levels", maxPatchDepth))
			}
			for _, e := range t {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		case []any:
			if depth == maxPatchDepth {
				return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the patch nests deeper than %d levels", maxPatchDepth))
			}
			objects := 0
			for _, e := range t {
				if _, ok := e.(map[string]any); ok {
					if objects++; objects > maxPatchListObjects {
						return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("a list in the patch holds more than %d objects", maxPatchListObjects))
					}
				}
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v, 0)
}
