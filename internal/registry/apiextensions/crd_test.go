package apiextensions

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"
)

// widgets is a valid CRD: two versions with their own schemas, status
// and scale subresources, printer columns, schema defaults.
const widgets = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget, shortNames: [wd, wds]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer, minimum: 0, default: 1}
              size: {type: string, enum: [small, large], default: small}
              labels: {type: object, additionalProperties: {type: string}, default: {"b": "2", "a": "1.0"}}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
    subresources:
      status: {}
`

func decode(t *testing.T, doc string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(doc), crd); err != nil {
		t.Fatal(err)
	}
	return crd
}

// create runs a create through the strategy as the server does.
func create(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	setDefaults(crd)
	prepareForCreate(context.Background(), crd)
	return validateCreate(crd)
}

// stored returns widgets as created, stored and established.
func stored(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := decode(t, widgets)
	if errs := create(crd); len(errs) > 0 {
		t.Fatalf("valid CRD refused: %v", errs)
	}
	crd.UID, crd.ResourceVersion = "uid-1", "5"
	crd.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{
		{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue},
		{Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionTrue},
	}
	crd.Status.AcceptedNames = crd.Spec.Names
	return crd
}

// messages renders errors as upstream's Status lists their causes, less
// the values.
func messages(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s: %s: %s", e.Field, e.Type, e.Detail))
	}
	return out
}

func TestValidateCreate(t *testing.T) {
	typeRequired := "Required value: must not be empty for specified object fields"
	for _, tc := range []struct {
		name   string
		doc    string // defaults to widgets
		change func(*apiextensionsv1.CustomResourceDefinition)
		want   []string
	}{
		{name: "valid", want: []string{}},
		{
			name: "no storage version",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Versions[0].Storage = false
			},
			want: []string{
				"spec.versions: Invalid value: must have exactly one version marked as storage version",
				"status.storedVersions: Invalid value: must have at least one stored version",
			},
		},
		{
			name: "two storage versions",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Versions[1].Storage = true
			},
			want: []string{
				"spec.versions: Invalid value: must have exactly one version marked as storage version",
				"status.storedVersions: Invalid value: must have the storage version v1beta1",
			},
		},
		{
			name: "plural not lowercase",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				// The name matches, but is no DNS subdomain: the server
				// reports that, so it is not listed twice.
				crd.Name, crd.Spec.Names.Plural = "Widgets.example.com", "Widgets"
			},
			want: []string{"spec.names.plural: Invalid value: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"},
		},
		{
			name: "name not plural.group",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Name = "widget.example.com"
			},
			want: []string{`metadata.name: Invalid value: must be spec.names.plural+"."+spec.group`},
		},
		{
			name: "group without a dot",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Name, crd.Spec.Group = "widgets.example", "example"
			},
			want: []string{"spec.group: Invalid value: should be a domain with at least one dot"},
		},
		{
			name: "missing type",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				p := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]
				p.Type = ""
				crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"] = p
			},
			want: []string{"spec.versions[0].schema.openAPIV3Schema.properties[status].type: " + typeRequired},
		},
		{
			// One schema for all versions is the internal top-level one:
			// upstream reports it there.
			name: "missing type, single version",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Versions = crd.Spec.Versions[:1]
				p := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]
				p.Type = ""
				crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"] = p
			},
			want: []string{"spec.validation.openAPIV3Schema.properties[status].type: " + typeRequired},
		},
		{
			name: "no schema",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Versions[1].Schema = nil
			},
			want: []string{"spec.versions[1].schema.openAPIV3Schema: Required value: "},
		},
		{
			name: "x-kubernetes-preserve-unknown-fields false",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				f := false
				crd.Spec.Versions[1].Schema.OpenAPIV3Schema.XPreserveUnknownFields = &f
			},
			want: []string{"spec.versions[1].schema.openAPIV3Schema.x-kubernetes-preserve-unknown-fields: Invalid value: must be true or undefined"},
		},
		{
			name: "spec.preserveUnknownFields true",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.PreserveUnknownFields = true
			},
			want: []string{"spec.preserveUnknownFields: Invalid value: must be false in order to use defaults in the schema",
				"spec.preserveUnknownFields: Invalid value: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"},
		},
		{
			name: "default not pruned",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				p := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
				p.Default = &apiextensionsv1.JSON{Raw: []byte(`{"unknown":1}`)}
				crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = p
			},
			want: []string{`spec.versions[0].schema.openAPIV3Schema.properties[spec].default: Invalid value: must not have unknown fields`},
		},
		{
			name: "protected group without approval",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Name, crd.Spec.Group = "widgets.apps.k8s.io", "apps.k8s.io"
			},
			want: []string{`metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111`},
		},
		{
			// A default that is not JSON reaches us only through protobuf.
			name: "undecodable default",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				p := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
				p.Default = &apiextensionsv1.JSON{Raw: []byte(`{`)}
				crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = p
			},
			want: []string{"spec: Invalid value: cannot be decoded: unexpected end of JSON input"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crd := decode(t, widgets)
			if tc.change != nil {
				tc.change(crd)
			}
			if diff := cmp.Diff(tc.want, messages(create(crd))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		established bool
		change      func(*apiextensionsv1.CustomResourceDefinition)
		want        []string
	}{
		{
			name:        "new version",
			established: true,
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				v := *crd.Spec.Versions[1].DeepCopy()
				v.Name = "v2"
				crd.Spec.Versions = append(crd.Spec.Versions, v)
			},
			want: []string{},
		},
		{
			name:        "scope of an established CRD",
			established: true,
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Scope = apiextensionsv1.ClusterScoped
			},
			want: []string{"spec.scope: Invalid value: field is immutable"},
		},
		{
			// Names and scope may change until the CRD is established.
			name: "scope before it is established",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Scope = apiextensionsv1.ClusterScoped
			},
			want: []string{},
		},
		{
			name: "group",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Group = "example.org"
			},
			want: []string{"spec.group: Invalid value: field is immutable"},
		},
		{
			name: "plural",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Names.Plural = "gadgets"
			},
			want: []string{"spec.names.plural: Invalid value: field is immutable"},
		},
		{
			// storedVersions keeps v1 (status is the stored one): v1
			// cannot leave spec.versions until a migration removes it.
			name:        "dropping a stored version",
			established: true,
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Versions = crd.Spec.Versions[1:]
				crd.Spec.Versions[0].Storage = true
			},
			want: []string{"status.storedVersions[0]: Invalid value: missing from spec.versions; v1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1 and removes v1 from status.storedVersions"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := stored(t)
			if !tc.established {
				old.Status.Conditions = nil
			}
			crd := old.DeepCopy()
			tc.change(crd)
			setDefaults(crd)
			prepareForUpdate(context.Background(), crd, old)
			if diff := cmp.Diff(tc.want, messages(validateUpdate(crd, old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	crd := decode(t, widgets)
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["replicas"] = apiextensionsv1.JSONSchemaProps{
		Type: "integer", Default: &apiextensionsv1.JSON{Raw: []byte(`3.0`)},
	}
	setDefaults(crd)
	if c := crd.Spec.Conversion; c == nil || c.Strategy != apiextensionsv1.NoneConverter || c.Webhook != nil {
		t.Errorf("conversion = %+v, want strategy None", c)
	}
	if crd.Spec.Names.Singular != "widget" || crd.Spec.Names.ListKind != "WidgetList" {
		t.Errorf("names = %+v, want singular widget and listKind WidgetList", crd.Spec.Names)
	}
	if diff := cmp.Diff([]string{"v1"}, crd.Status.StoredVersions); diff != "" {
		t.Errorf("storedVersions (-want +got):\n%s", diff)
	}
	// Schema defaults come back as upstream stores them.
	props := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	for name, want := range map[string]string{"replicas": `3`, "size": `"small"`, "labels": `{"a":"1.0","b":"2"}`} {
		if got := string(props[name].Default.Raw); got != want {
			t.Errorf("%s default = %s, want %s", name, got, want)
		}
	}
	// Each version keeps a schema of its own after the round trip.
	crd.Spec.Versions = crd.Spec.Versions[:1]
	crd.Spec.Versions = append(crd.Spec.Versions, *crd.Spec.Versions[0].DeepCopy())
	crd.Spec.Versions[1].Name, crd.Spec.Versions[1].Storage = "v2", false
	setDefaults(crd)
	if crd.Spec.Versions[0].Schema == crd.Spec.Versions[1].Schema {
		t.Error("versions share one schema after defaulting")
	}

	hook := decode(t, widgets)
	hook.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
		Strategy: apiextensionsv1.WebhookConverter,
		Webhook: &apiextensionsv1.WebhookConversion{
			ConversionReviewVersions: []string{"v1"},
			ClientConfig:             &apiextensionsv1.WebhookClientConfig{Service: &apiextensionsv1.ServiceReference{Namespace: "ns", Name: "svc"}},
		},
	}
	setDefaults(hook)
	if p := hook.Spec.Conversion.Webhook.ClientConfig.Service.Port; p == nil || *p != 443 {
		t.Errorf("webhook service port = %v, want 443", p)
	}
}

func TestPrepareForCreate(t *testing.T) {
	crd := decode(t, widgets)
	crd.Generation = 7
	crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{
		StoredVersions: []string{"v0", "v1beta1"},
		Conditions:     []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}},
		AcceptedNames:  apiextensionsv1.CustomResourceDefinitionNames{Plural: "x"},
	}
	prepareForCreate(context.Background(), crd)
	want := apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}}
	if diff := cmp.Diff(want, crd.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if crd.Generation != 1 {
		t.Errorf("generation = %d, want 1", crd.Generation)
	}
}

func TestPrepareForUpdate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		change     func(*apiextensionsv1.CustomResourceDefinition)
		generation int64
		stored     []string
	}{
		{
			name:       "metadata only",
			change:     func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Labels = map[string]string{"a": "b"} },
			generation: 1, stored: []string{"v1"},
		},
		{
			name:       "spec",
			change:     func(crd *apiextensionsv1.CustomResourceDefinition) { crd.Spec.Names.ShortNames = nil },
			generation: 2, stored: []string{"v1"},
		},
		{
			name: "new storage version",
			change: func(crd *apiextensionsv1.CustomResourceDefinition) {
				crd.Spec.Versions[0].Storage, crd.Spec.Versions[1].Storage = false, true
			},
			generation: 2, stored: []string{"v1", "v1beta1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := stored(t)
			crd := old.DeepCopy()
			tc.change(crd)
			crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v9"}}
			setDefaults(crd)
			prepareForUpdate(context.Background(), crd, old)
			if crd.Generation != tc.generation {
				t.Errorf("generation = %d, want %d", crd.Generation, tc.generation)
			}
			if diff := cmp.Diff(tc.stored, crd.Status.StoredVersions); diff != "" {
				t.Errorf("storedVersions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(old.Status.Conditions, crd.Status.Conditions); diff != "" {
				t.Errorf("conditions not kept (-old +new):\n%s", diff)
			}
			if len(old.Status.StoredVersions) != 1 {
				t.Errorf("old changed: %v", old.Status.StoredVersions)
			}
		})
	}
}

func TestStatusUpdate(t *testing.T) {
	old := stored(t)
	old.Finalizers = []string{apiextensionsv1.CustomResourceCleanupFinalizer}
	crd := old.DeepCopy()
	crd.Spec.Scope = apiextensionsv1.ClusterScoped
	crd.Spec.Versions = nil
	crd.Finalizers = nil // how the CRD controller ends a deletion
	crd.Status.StoredVersions = []string{"v1"}
	crd.Status.Conditions = append(crd.Status.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Terminating, Status: apiextensionsv1.ConditionTrue})
	setDefaults(crd)
	prepareForStatusUpdate(context.Background(), crd, old)
	if diff := cmp.Diff(old.Spec, crd.Spec); diff != "" {
		t.Errorf("spec changed through /status (-old +new):\n%s", diff)
	}
	if len(crd.Status.Conditions) != 3 || len(crd.Finalizers) != 0 {
		t.Errorf("status write lost: conditions %v, finalizers %v", crd.Status.Conditions, crd.Finalizers)
	}
	if errs := validateStatusUpdate(crd, old); len(errs) > 0 {
		t.Errorf("status update refused: %v", errs)
	}
	crd.Status.AcceptedNames.Plural = "Widgets"
	want := []string{"status.acceptedNames.plural: Invalid value: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"}
	if diff := cmp.Diff(want, messages(validateStatusUpdate(crd, old))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// TestMetadataErrorsOnce checks that metadata errors the server reports
// itself are not repeated, and that the library's own stay.
func TestMetadataErrorsOnce(t *testing.T) {
	crd := decode(t, widgets)
	crd.Labels = map[string]string{"bad label": "x"}
	if errs := create(crd); len(errs) != 0 {
		t.Errorf("create: server's label error repeated: %v", messages(errs))
	}
	old := stored(t)
	crd = old.DeepCopy()
	crd.Labels = map[string]string{"bad label": "x"}
	crd.UID = "other"
	if errs := validateUpdate(crd, old); len(errs) != 0 {
		t.Errorf("update: server's errors repeated: %v", messages(errs))
	}
	if errs := validateStatusUpdate(crd, old); len(errs) != 0 {
		t.Errorf("status: server's errors repeated: %v", messages(errs))
	}
}

func TestDeletion(t *testing.T) {
	res := Resources()[0]
	crd := stored(t)
	if !res.Strategy.DeletionHeld(crd) {
		t.Fatal("a CRD not yet being deleted is not held: it would go at once")
	}
	now := metav1.Now()
	crd.DeletionTimestamp = &now
	res.Strategy.BeginDeletion(crd)
	res.Strategy.BeginDeletion(crd) // a second DELETE
	if diff := cmp.Diff([]string{apiextensionsv1.CustomResourceCleanupFinalizer}, crd.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	var terminating *apiextensionsv1.CustomResourceDefinitionCondition
	for i, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Terminating {
			terminating = &crd.Status.Conditions[i]
		}
	}
	if terminating == nil || terminating.Status != apiextensionsv1.ConditionTrue || terminating.Reason != "InstanceDeletionPending" || terminating.LastTransitionTime.IsZero() {
		t.Errorf("Terminating condition = %+v", terminating)
	}
	if res.Strategy.DeletionHeld(crd) {
		t.Error("a CRD being deleted is still held once its finalizer is gone")
	}
}

func TestTable(t *testing.T) {
	crd := stored(t)
	crd.Spec.Versions = append(crd.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{Name: "v0", Served: false})
	cols := []string{}
	for _, c := range table.Columns {
		cols = append(cols, fmt.Sprintf("%s/%d", c.Name, c.Priority))
	}
	wantCols := []string{"Name/0", "Scope/0", "Versions/0", "Created At/0", "Group/1", "Kind/1", "ShortNames/1", "Established/1"}
	if diff := cmp.Diff(wantCols, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := []interface{}{"widgets.example.com", "Namespaced", "v1(storage),v1beta1", "2026-01-02T03:04:05Z", "example.com", "Widget", "wd,wds", true}
	if diff := cmp.Diff(want, table.Row(crd)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	crd.Status.Conditions = nil
	crd.Spec.Names.ShortNames = nil
	if row := table.Row(crd); row[6] != "" || row[7] != false {
		t.Errorf("row without short names and conditions = %v", row)
	}
	if row := table.Row(&corev1.Pod{}); row != nil {
		t.Errorf("row of a pod = %v", row)
	}
}

// TestCodecs checks that the server's codecs, built on client-go's
// scheme, carry CRDs.
func TestCodecs(t *testing.T) {
	crd := stored(t)
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	for _, tc := range []struct {
		name  string
		codec runtime.Serializer
	}{
		{"protobuf", protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)},
		{"json", serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, serializerjson.SerializerOptions{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := runtime.Encode(tc.codec, crd)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := tc.codec.Decode(data, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(crd, got) {
				t.Errorf("round trip changed the CRD:\n%s", cmp.Diff(crd, got))
			}
		})
	}
}

// TestNoPanic runs every func on random and degenerate objects.
func TestNoPanic(t *testing.T) {
	res := Resources()[0]
	st := res.Strategy
	ctx := context.Background()
	run := func(obj, old runtime.Object) {
		st.Default(obj)
		st.PrepareForCreate(ctx, obj)
		st.Validate(obj)
		st.PrepareForUpdate(ctx, obj, old)
		st.ValidateUpdate(obj, old)
		st.PrepareForStatusUpdate(ctx, obj, old)
		st.ValidateStatusUpdate(obj, old)
		st.DeletionHeld(obj)
		st.BeginDeletion(obj)
		res.Table.Row(obj)
		res.Fields(obj)
	}
	run(&apiextensionsv1.CustomResourceDefinition{}, &apiextensionsv1.CustomResourceDefinition{})
	run(&corev1.Pod{}, &corev1.Pod{})
	run(decode(t, widgets), &apiextensionsv1.CustomResourceDefinition{})
	run(&apiextensionsv1.CustomResourceDefinition{}, decode(t, widgets))
	nils := decode(t, widgets)
	nils.Spec.Versions[0].Schema.OpenAPIV3Schema = nil
	nils.Spec.Versions[1].Subresources = &apiextensionsv1.CustomResourceSubresources{}
	nils.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter, Webhook: &apiextensionsv1.WebhookConversion{}}
	run(nils, decode(t, widgets))

	f := randfill.NewWithSeed(1).NilChance(0.3).NumElements(0, 2).MaxDepth(8)
	for i := 0; i < 300; i++ {
		obj, old := &apiextensionsv1.CustomResourceDefinition{}, &apiextensionsv1.CustomResourceDefinition{}
		f.Fill(obj)
		f.Fill(old)
		run(obj, old)
	}
}
