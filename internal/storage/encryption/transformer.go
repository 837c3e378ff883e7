package encryption

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Transformer turns one resource's encoded values into what etcd stores
// and back. It has the method set of storage.Transformer, which the
// storage codec calls.
type Transformer interface {
	// TransformToStorage returns the value to store for data.
	TransformToStorage(data []byte) ([]byte, error)
	// TransformFromStorage returns the encoded value of a stored one, and
	// whether the stored value is stale: written with another key than
	// the one TransformToStorage writes with now, so that an update must
	// rewrite it even if the object did not change.
	TransformFromStorage(data []byte) (out []byte, stale bool, err error)
}

// List is the transformer of one rule: its providers' keys in order. The
// first key of the first provider writes; every key reads the values
// that carry its prefix, identity those without one.
type List struct {
	keys []*keyCipher
	rand io.Reader
}

var _ Transformer = (*List)(nil)

// identityList stores values as they are: the transformer of a resource
// that no rule covers.
var identityList = &List{keys: []*keyCipher{identity}}

func newList(providers []ProviderConfiguration, rnd io.Reader) (*List, error) {
	l := &List{rand: rnd}
	for _, p := range providers {
		name, keys := p.name()
		if name == Identity {
			l.keys = append(l.keys, identity)
			continue
		}
		if keys == nil {
			return nil, fmt.Errorf("provider %q is not supported", name)
		}
		for _, k := range keys.Keys {
			kc, err := newKeyCipher(name, k)
			if err != nil {
				return nil, err
			}
			l.keys = append(l.keys, kc)
		}
	}
	if len(l.keys) == 0 {
		return nil, fmt.Errorf("no providers")
	}
	return l, nil
}

// TransformToStorage implements Transformer with the first key.
func (l *List) TransformToStorage(data []byte) ([]byte, error) {
	k := l.keys[0]
	if k.provider == Identity {
		return data, nil // no copy: the codec hands over a buffer of its own
	}
	dst := make([]byte, len(k.prefix), len(k.prefix)+len(data)+64)
	copy(dst, k.prefix)
	out, err := k.seal(l.rand, dst, data)
	if err != nil {
		return nil, fmt.Errorf("encrypt with %s: %w", k.id(), err)
	}
	return out, nil
}

// TransformFromStorage implements Transformer: the first key whose prefix
// the value carries reads it, as upstream does; identity, whose prefix is
// empty, is skipped for encrypted values. A value read by any key but the
// first is stale.
func (l *List) TransformFromStorage(data []byte) ([]byte, bool, error) {
	for i, k := range l.keys {
		if !bytes.HasPrefix(data, k.prefix) {
			continue
		}
		out, err := k.open(data[len(k.prefix):])
		if err != nil {
			if k.provider == Identity {
				continue
			}
			return nil, false, fmt.Errorf("decrypt with %s: %w", k.id(), err)
		}
		return out, i != 0, nil
	}
	if bytes.HasPrefix(data, []byte(encPrefix)) {
		return nil, false, fmt.Errorf("value is encrypted with %s, which the encryption configuration does not hold", describe(data))
	}
	return nil, false, fmt.Errorf("value is not encrypted and the encryption configuration has no identity provider to read it")
}

// Active names the key values are written with: "secretbox:key1", or
// "identity".
func (l *List) Active() string { return l.keys[0].id() }

// Keys names every key of the list, the active one first.
func (l *List) Keys() []string {
	out := make([]string, len(l.keys))
	for i, k := range l.keys {
		out[i] = k.id()
	}
	return out
}

// WrittenWith names the key a stored value was written with, as Active
// does, or describes the foreign prefix of a value no key reads.
func (l *List) WrittenWith(data []byte) string {
	for _, k := range l.keys {
		if len(k.prefix) > 0 && bytes.HasPrefix(data, k.prefix) {
			return k.id()
		}
	}
	if !bytes.HasPrefix(data, []byte(encPrefix)) {
		return Identity
	}
	return describe(data)
}

// describe names the provider and key in an encrypted value's prefix,
// "aescbc:key1", without decrypting anything: the key name ends at the
// first ':' after "k8s:enc:<provider>:v1:" (a name holding ':' is cut
// short; this is for messages only).
func describe(data []byte) string {
	rest := string(data[len(encPrefix):min(len(data), len(encPrefix)+128)])
	provider, rest, _ := strings.Cut(rest, ":")
	_, rest, _ = strings.Cut(rest, ":")
	name, _, ok := strings.Cut(rest, ":")
	if !ok {
		return fmt.Sprintf("an unknown %q key", provider)
	}
	return fmt.Sprintf("%s:%s", provider, name)
}

// Set is the transformers of a whole configuration, by resource.
type Set struct {
	config *Configuration
	lists  map[schema.GroupResource]*List
}

// NewSet builds the transformers of c, a validated configuration.
func NewSet(c *Configuration) (*Set, error) { return newSet(c, defaultRand) }

func newSet(c *Configuration, rnd io.Reader) (*Set, error) {
	s := &Set{config: c, lists: map[schema.GroupResource]*List{}}
	// A resource named by several rules gets their providers in order,
	// as upstream appends them.
	providers := map[schema.GroupResource][]ProviderConfiguration{}
	var order []schema.GroupResource
	for _, rc := range c.Resources {
		for _, r := range rc.Resources {
			gr := schema.ParseGroupResource(r)
			if _, ok := providers[gr]; !ok {
				order = append(order, gr)
			}
			providers[gr] = append(providers[gr], rc.Providers...)
		}
	}
	for _, gr := range order {
		l, err := newList(providers[gr], rnd)
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", grString(gr), err)
		}
		s.lists[gr] = l
	}
	return s, nil
}

// Config returns the configuration s was built from. Callers must not
// change it.
func (s *Set) Config() *Configuration { return s.config }

// For returns the transformer of a resource: its own rule's, else its
// group's ("*.apps"), else every resource's ("*.*"), else identity.
func (s *Set) For(gr schema.GroupResource) *List {
	if s == nil {
		return identityList
	}
	if l, ok := s.lists[gr]; ok {
		return l
	}
	if l, ok := s.lists[schema.GroupResource{Group: gr.Group, Resource: "*"}]; ok {
		return l
	}
	if l, ok := s.lists[schema.GroupResource{Group: "*", Resource: "*"}]; ok {
		return l
	}
	return identityList
}

// Encrypts reports whether any resource is written encrypted.
func (s *Set) Encrypts() bool {
	if s == nil {
		return false
	}
	for _, l := range s.lists {
		if l.keys[0].provider != Identity {
			return true
		}
	}
	return false
}
