package core

import (
	"encoding/json"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Secrets returns the descriptor of core/v1 secrets (no short name).
func Secrets() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "secrets",
		Singular:     "secret",
		Kind:         "Secret",
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.Secret{} },
		NewList:      func() runtime.Object { return &corev1.SecretList{} },
		Strategy: registry.Strategy{
			Default:        defaultSecret,
			Validate:       validateSecret,
			ValidateUpdate: validateSecretUpdate,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Type", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["type"]},
				{Name: "Data", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["data"]},
				registry.AgeColumn,
			},
			Row: func(obj runtime.Object) []interface{} {
				s, ok := obj.(*corev1.Secret)
				if !ok {
					return []interface{}{"", "", int64(0), ""}
				}
				return []interface{}{s.Name, string(s.Type), int64(len(s.Data)), registry.Age(s)}
			},
		},
		Fields: func(obj runtime.Object) fields.Set {
			s, ok := obj.(*corev1.Secret)
			if !ok {
				return fields.Set{}
			}
			set := metaFields(&s.ObjectMeta, true)
			set["type"] = string(s.Type)
			return set
		},
	}
}

// defaultSecret sets type Opaque when unset and folds the write-only
// stringData into data (a stringData key wins over the same data key), as
// upstream's conversion does: stringData is never stored nor returned.
func defaultSecret(obj runtime.Object) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

// validateSecret checks data keys, the 1 MiB ceiling and the keys or
// annotations each well-known type requires.
func validateSecret(obj runtime.Object) field.ErrorList {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return metaWrongType(obj, "v1.Secret")
	}
	var errs field.ErrorList
	dataPath := field.NewPath("data")
	total := 0
	for _, k := range metaSortedKeys(s.Data) {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(dataPath.Key(k), k, msg))
		}
		total += len(s.Data[k])
	}
	if total > metaMaxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", metaMaxDataSize))
	}

	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		errs = append(errs, secretJSONKey(s, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		errs = append(errs, secretJSONKey(s, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, pass := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			errs = append(errs,
				field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return errs
}

// secretJSONKey requires data[key] and that it holds a JSON object.
func secretJSONKey(s *corev1.Secret, key string, dataPath *field.Path) field.ErrorList {
	b, ok := s.Data[key]
	if !ok {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	if err := json.Unmarshal(b, &map[string]interface{}{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}

// validateSecretUpdate adds: type is immutable, and once immutable is true
// it stays true and data may not change.
func validateSecretUpdate(obj, old runtime.Object) field.ErrorList {
	s, ok1 := obj.(*corev1.Secret)
	oldS, ok2 := old.(*corev1.Secret)
	if !ok1 || !ok2 {
		return metaWrongType(obj, "v1.Secret")
	}
	errs := apimachineryvalidation.ValidateImmutableField(s.Type, oldS.Type, field.NewPath("type"))
	if oldS.Immutable != nil && *oldS.Immutable {
		if s.Immutable == nil || !*s.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(s.Data, oldS.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
	}
	return append(errs, validateSecret(obj)...)
}
