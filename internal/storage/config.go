package storage

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DefaultBookmarkInterval is how often a watch that asked for bookmarks
// gets one when Config.BookmarkInterval is zero (upstream sends them about
// once a minute; we send them more often because they are cheap and let
// clients resume closer to the present).
const DefaultBookmarkInterval = 5 * time.Second

// Config describes the one resource a Store or Cacher holds.
type Config struct {
	// Prefix is the key prefix every object of the resource lives under,
	// ending in "/" ("/registry/pods/").
	Prefix string
	// GVK is set as TypeMeta on every object before it is encoded and on
	// every object read back, so that encoders further up never need to
	// mutate objects that the watch cache shares.
	GVK schema.GroupVersionKind
	// NewFunc returns a new empty object of the resource's type,
	// NewListFunc a new empty list of it.
	NewFunc, NewListFunc func() runtime.Object
	// BookmarkInterval is how often watches with AllowWatchBookmarks get a
	// BOOKMARK event. Zero means DefaultBookmarkInterval.
	BookmarkInterval time.Duration
	// Transformer, if not nil, transforms every value on its way to etcd
	// and back (encryption at rest); nil stores values as encoded.
	Transformer Transformer
	// JSON stores objects as JSON instead of protobuf: custom resources,
	// whose objects are unstructured and have no protobuf form, as
	// upstream stores them.
	JSON bool
}

func (c Config) bookmarkInterval() time.Duration {
	if c.BookmarkInterval <= 0 {
		return DefaultBookmarkInterval
	}
	return c.BookmarkInterval
}

// resourceLabel names the resource in metrics and logs: the prefix.
func (c Config) resourceLabel() string { return c.Prefix }
