package manager

import (
	"github.com/skiff-io/skiff/internal/controller/namespace"
	"github.com/skiff-io/skiff/internal/controller/replicaset"
	"github.com/skiff-io/skiff/internal/controller/statefulset"
)

// known maps each controller's --controllers name to its constructor.
var known = map[string]Constructor{
	"namespace": func(c Context) (Runnable, error) { return namespace.New(c.RESTConfig) },
	"replicaset": func(c Context) (Runnable, error) {
		return replicaset.New(c.Client, c.Informers, c.Recorder("replicaset-controller"))
	},
	"statefulset": func(c Context) (Runnable, error) {
		return statefulset.New(c.Client, c.Informers, c.Recorder("statefulset-controller"))
	},
}
