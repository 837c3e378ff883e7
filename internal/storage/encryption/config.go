package encryption

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// The one kind and version of configuration read: upstream's
// apiserver.config.k8s.io/v1 EncryptionConfiguration.
const (
	APIVersion = "apiserver.config.k8s.io/v1"
	Kind       = "EncryptionConfiguration"
)

// Provider names, as the configuration spells them and as stored values
// carry them in their prefix ("k8s:enc:aescbc:v1:<key>:").
const (
	AESCBC    = "aescbc"
	AESGCM    = "aesgcm"
	Secretbox = "secretbox"
	Identity  = "identity"
)

// Configuration is upstream's EncryptionConfiguration: for each rule, the
// resources it covers and the providers that store them. The first
// provider of a rule writes; every provider of it reads.
type Configuration struct {
	Kind       string                  `json:"kind"`
	APIVersion string                  `json:"apiVersion"`
	Resources  []ResourceConfiguration `json:"resources"`
}

// ResourceConfiguration is one rule. Resources are "secrets",
// "deployments.apps", "*." (every core resource), "*.apps" (every
// resource of a group) or "*.*" (every resource).
type ResourceConfiguration struct {
	Resources []string                `json:"resources"`
	Providers []ProviderConfiguration `json:"providers"`
}

// ProviderConfiguration sets exactly one provider.
type ProviderConfiguration struct {
	AESGCM    *KeysConfiguration `json:"aesgcm,omitempty"`
	AESCBC    *KeysConfiguration `json:"aescbc,omitempty"`
	Secretbox *KeysConfiguration `json:"secretbox,omitempty"`
	Identity  *struct{}          `json:"identity,omitempty"`
	// KMS is accepted by the parser so that validation can say clearly
	// that skiff has no KMS plugins, rather than "unknown field".
	KMS map[string]any `json:"kms,omitempty"`
}

// KeysConfiguration holds a provider's keys; the first one encrypts.
type KeysConfiguration struct {
	Keys []Key `json:"keys"`
}

// Key is one named key: Secret is its bytes, base64 encoded.
type Key struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// String and LogValue keep the key material out of anything that prints
// or logs a Key.
func (k Key) String() string { return fmt.Sprintf("key %q (secret redacted)", k.Name) }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// GoString implements fmt.GoStringer (%#v).
func (k Key) GoString() string { return k.String() }

// name returns which provider p sets ("" when none); keys its keys.
func (p ProviderConfiguration) name() (string, *KeysConfiguration) {
	switch {
	case p.AESCBC != nil:
		return AESCBC, p.AESCBC
	case p.AESGCM != nil:
		return AESGCM, p.AESGCM
	case p.Secretbox != nil:
		return Secretbox, p.Secretbox
	case p.Identity != nil:
		return Identity, nil
	case p.KMS != nil:
		return "kms", nil
	}
	return "", nil
}

// LoadFile reads, parses and validates the configuration at path.
func LoadFile(path string) (*Configuration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption configuration: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("encryption configuration %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a configuration (YAML or JSON; unknown fields are errors,
// as upstream decodes it strictly) and validates it. Errors name the
// field, never a key's secret.
func Parse(data []byte) (*Configuration, error) {
	var c Configuration
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := c.Validate().ToAggregate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// keySizes are the key lengths each provider takes, as upstream checks
// them: AES-128, -192 and -256; XSalsa20 takes 256 bits only.
var keySizes = map[string][]int{AESCBC: {16, 24, 32}, AESGCM: {16, 24, 32}, Secretbox: {32}}

// Validate checks c as upstream does (upstream's messages where it has
// them), and also refuses what upstream accepts but cannot work: a
// resource named in upper case or as "*", two keys of one provider with
// the same name (the second could never be read), and KMS providers
// (skiff has no KMS plugin support).
func (c *Configuration) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.Kind != Kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), c.Kind, "must be "+Kind))
	}
	if c.APIVersion != APIVersion {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), c.APIVersion, "must be "+APIVersion))
	}
	root := field.NewPath("resources")
	if len(c.Resources) == 0 {
		return append(errs, field.Required(root, "at least one resources is required"))
	}
	// seen maps each group resource named so far to where.
	seen := map[schema.GroupResource]*field.Path{}
	for i, rc := range c.Resources {
		rp, pp := root.Index(i).Child("resources"), root.Index(i).Child("providers")
		if len(rc.Resources) == 0 {
			errs = append(errs, field.Required(rp, "at least one resource is required"))
		}
		for j, r := range rc.Resources {
			errs = append(errs, validateResource(r, rp.Index(j), seen)...)
		}
		if len(rc.Providers) == 0 {
			errs = append(errs, field.Required(pp, "at least one provider is required"))
		}
		for j, p := range rc.Providers {
			errs = append(errs, validateProvider(p, pp.Index(j))...)
		}
	}
	return errs
}

func validateResource(r string, path *field.Path, seen map[schema.GroupResource]*field.Path) field.ErrorList {
	switch {
	case r == "":
		return field.ErrorList{field.Required(path, "resource name must not be empty")}
	case r == "*":
		return field.ErrorList{field.Invalid(path, r, "use '*.' for every resource of the core group or '*.*' for every resource")}
	case strings.ToLower(r) != r:
		return field.ErrorList{field.Invalid(path, r, "resource name must not contain capital letters")}
	}
	gr := schema.ParseGroupResource(r)
	// An earlier "*.group" or "*.*" rule would take every resource this
	// one names: upstream refuses the configuration, and so do we.
	for _, masking := range []schema.GroupResource{{Group: gr.Group, Resource: "*"}, {Group: "*", Resource: "*"}} {
		if at, ok := seen[masking]; ok && masking != gr {
			return field.ErrorList{field.Invalid(path, r, fmt.Sprintf("resource %q is masked by earlier rule %q (%s)", r, grString(masking), at))}
		}
	}
	if _, ok := seen[gr]; !ok {
		seen[gr] = path
	}
	return nil
}

func validateProvider(p ProviderConfiguration, path *field.Path) field.ErrorList {
	set := 0
	for _, isSet := range []bool{p.AESCBC != nil, p.AESGCM != nil, p.Secretbox != nil, p.Identity != nil, p.KMS != nil} {
		if isSet {
			set++
		}
	}
	switch {
	case set == 0:
		return field.ErrorList{field.Required(path, "provider does not contain any of the expected providers: aescbc, aesgcm, secretbox, identity")}
	case set > 1:
		return field.ErrorList{field.Invalid(path, "(several)", "more than one provider specified in a single element, should split into different list elements")}
	}
	name, keys := p.name()
	if name == "kms" {
		return field.ErrorList{field.NotSupported(path.Child("kms"), "kms", []string{AESCBC, AESGCM, Secretbox, Identity})}
	}
	if keys == nil {
		return nil
	}
	kp := path.Child(name, "keys")
	if len(keys.Keys) == 0 {
		return field.ErrorList{field.Required(kp, "at least one keys is required")}
	}
	var errs field.ErrorList
	names := map[string]bool{}
	for i, k := range keys.Keys {
		p := kp.Index(i)
		switch {
		case k.Name == "":
			errs = append(errs, field.Required(p.Child("name"), "name is a mandatory field for a key"))
		case names[k.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), k.Name))
		}
		names[k.Name] = true
		if k.Secret == "" {
			errs = append(errs, field.Required(p.Child("secret"), "secret is a mandatory field for a key"))
			continue
		}
		secret, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil {
			errs = append(errs, field.Invalid(p.Child("secret"), "REDACTED", "secrets must be base64 encoded"))
			continue
		}
		if !validSize(len(secret), keySizes[name]) {
			errs = append(errs, field.Invalid(p.Child("secret"), "REDACTED",
				fmt.Sprintf("secret is not of the expected length, got %d, expected one of %v", len(secret), keySizes[name])))
		}
	}
	return errs
}

func validSize(n int, sizes []int) bool {
	for _, s := range sizes {
		if n == s {
			return true
		}
	}
	return false
}

// grString writes a group resource as the configuration does: "secrets",
// "deployments.apps", "*.", "*.*".
func grString(gr schema.GroupResource) string {
	if gr.Group == "" {
		if gr.Resource == "*" {
			return "*."
		}
		return gr.Resource
	}
	return gr.Resource + "." + gr.Group
}
