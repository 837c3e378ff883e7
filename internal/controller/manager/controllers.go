package manager

import (
	"github.com/skiff-io/skiff/internal/controller/namespace"
)

// known maps each controller's --controllers name to its constructor.
var known = map[string]Constructor{
	"namespace": func(c Context) (Runnable, error) { return namespace.New(c.RESTConfig) },
}
