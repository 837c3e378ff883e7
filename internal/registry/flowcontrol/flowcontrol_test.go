package flowcontrol

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

// Every bootstrap object is valid, and defaulting changes none of them:
// the server's reconciliation compares them with what is stored.
func TestBootstrapObjects(t *testing.T) {
	for _, pl := range append(MandatoryPriorityLevels(), SuggestedPriorityLevels()...) {
		if errs := validatePriorityLevel(pl); len(errs) != 0 {
			t.Errorf("priority level %s: %v", pl.Name, errs)
		}
		d := pl.DeepCopy()
		defaultPriorityLevel(d)
		if diff := cmp.Diff(pl, d); diff != "" {
			t.Errorf("priority level %s changed by defaulting:\n%s", pl.Name, diff)
		}
	}
	for _, fs := range append(MandatoryFlowSchemas(), SuggestedFlowSchemas()...) {
		if errs := validateFlowSchema(fs); len(errs) != 0 {
			t.Errorf("flow schema %s: %v", fs.Name, errs)
		}
		d := fs.DeepCopy()
		defaultFlowSchema(d)
		if diff := cmp.Diff(fs, d); diff != "" {
			t.Errorf("flow schema %s changed by defaulting:\n%s", fs.Name, diff)
		}
	}
}

func TestDefaultPriorityLevel(t *testing.T) {
	pl := &flowcontrolv1.PriorityLevelConfiguration{Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
		Type: flowcontrolv1.PriorityLevelEnablementLimited,
		Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{LimitResponse: flowcontrolv1.LimitResponse{
			Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: &flowcontrolv1.QueuingConfiguration{}}},
	}}
	defaultPriorityLevel(pl)
	l := pl.Spec.Limited
	got := []int32{*l.NominalConcurrencyShares, *l.LendablePercent, l.LimitResponse.Queuing.Queues, l.LimitResponse.Queuing.HandSize, l.LimitResponse.Queuing.QueueLengthLimit}
	if want := []int32{30, 0, 64, 8, 50}; !cmp.Equal(got, want) {
		t.Errorf("shares, lendable, queues, hand, length = %v, want %v", got, want)
	}
	fs := &flowcontrolv1.FlowSchema{}
	defaultFlowSchema(fs)
	if fs.Spec.MatchingPrecedence != 1000 {
		t.Errorf("matchingPrecedence %d, want 1000", fs.Spec.MatchingPrecedence)
	}
}

func validSchema(name string) *flowcontrolv1.FlowSchema {
	return &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "global-default"},
			MatchingPrecedence:         500,
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:      []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "alice"}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}, Namespaces: []string{"default"}}},
			}},
		},
	}
}

func TestValidateFlowSchema(t *testing.T) {
	tests := []struct {
		name   string
		change func(*flowcontrolv1.FlowSchema)
		want   []string
	}{
		{"valid", func(*flowcontrolv1.FlowSchema) {}, nil},
		{"precedence 1", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.MatchingPrecedence = 1 }, []string{"FieldValueInvalid spec.matchingPrecedence"}},
		{"precedence too high", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.MatchingPrecedence = 10001 }, []string{"FieldValueInvalid spec.matchingPrecedence"}},
		{"no level", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.PriorityLevelConfiguration.Name = "" },
			[]string{"FieldValueRequired spec.priorityLevelConfiguration.name"}},
		{"bad distinguisher", func(fs *flowcontrolv1.FlowSchema) {
			fs.Spec.DistinguisherMethod = &flowcontrolv1.FlowDistinguisherMethod{Type: "ByColour"}
		}, []string{"FieldValueNotSupported spec.distinguisherMethod.type"}},
		{"no subjects", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.Rules[0].Subjects = nil }, []string{"FieldValueRequired spec.rules[0].subjects"}},
		{"no rules", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.Rules[0].ResourceRules = nil }, []string{"FieldValueRequired spec.rules[0]"}},
		{"user subject with a group", func(fs *flowcontrolv1.FlowSchema) {
			fs.Spec.Rules[0].Subjects[0].Group = &flowcontrolv1.GroupSubject{Name: "g"}
		}, []string{"FieldValueForbidden spec.rules[0].subjects[0].group"}},
		{"service account without namespace", func(fs *flowcontrolv1.FlowSchema) {
			fs.Spec.Rules[0].Subjects[0] = flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount,
				ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Name: "*"}}
		}, []string{"FieldValueRequired spec.rules[0].subjects[0].serviceAccount.namespace"}},
		{"unknown verb", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.Rules[0].ResourceRules[0].Verbs = []string{"fly"} },
			[]string{"FieldValueNotSupported spec.rules[0].resourceRules[0].verbs"}},
		{"star with others", func(fs *flowcontrolv1.FlowSchema) {
			fs.Spec.Rules[0].ResourceRules[0].Resources = []string{"*", "pods"}
		},
			[]string{"FieldValueInvalid spec.rules[0].resourceRules[0].resources"}},
		{"no namespaces, not cluster scoped", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.Rules[0].ResourceRules[0].Namespaces = nil },
			[]string{"FieldValueRequired spec.rules[0].resourceRules[0].namespaces"}},
		{"bad url", func(fs *flowcontrolv1.FlowSchema) {
			fs.Spec.Rules[0].NonResourceRules = []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/a/*/b"}}}
		}, []string{"FieldValueInvalid spec.rules[0].nonResourceRules[0].nonResourceURLs[0]"}},
		{"duplicate condition", func(fs *flowcontrolv1.FlowSchema) {
			fs.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Type: "Dangling"}, {Type: "Dangling"}}
		}, []string{"FieldValueDuplicate status.conditions[1].type"}},
		{"a mandatory schema changed", func(fs *flowcontrolv1.FlowSchema) { fs.Name = "catch-all" }, []string{"FieldValueInvalid spec"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := validSchema("mine")
			tt.change(fs)
			if diff := cmp.Diff(tt.want, errFields(validateFlowSchema(fs))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePriorityLevel(t *testing.T) {
	limited := func() *flowcontrolv1.PriorityLevelConfiguration { return SuggestedPriorityLevels()[5].DeepCopy() } // global-default
	neg := int32(-1)
	tests := []struct {
		name string
		pl   func() *flowcontrolv1.PriorityLevelConfiguration
		want []string
	}{
		{"valid", limited, nil},
		{"exempt type, other name", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := MandatoryPriorityLevels()[0].DeepCopy()
			pl.Name = "mine"
			return pl
		}, []string{"FieldValueInvalid spec.type"}},
		{"limited without settings", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := limited()
			pl.Spec.Limited = nil
			return pl
		}, []string{"FieldValueRequired spec.limited"}},
		{"negative shares and lending", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := limited()
			pl.Spec.Limited.NominalConcurrencyShares, pl.Spec.Limited.LendablePercent, pl.Spec.Limited.BorrowingLimitPercent = &neg, &neg, &neg
			return pl
		}, []string{"FieldValueInvalid spec.limited.nominalConcurrencyShares", "FieldValueInvalid spec.limited.lendablePercent", "FieldValueInvalid spec.limited.borrowingLimitPercent"}},
		{"queue without queuing", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := limited()
			pl.Spec.Limited.LimitResponse.Queuing = nil
			return pl
		}, []string{"FieldValueRequired spec.limited.limitResponse.queuing"}},
		{"hand larger than the deck", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := limited()
			pl.Spec.Limited.LimitResponse.Queuing.HandSize = 200
			return pl
		}, []string{"FieldValueInvalid spec.limited.limitResponse.queuing.handSize"}},
		{"too much entropy", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := limited()
			pl.Spec.Limited.LimitResponse.Queuing.HandSize = 9 // 9 × 7 bits > 60
			return pl
		}, []string{"FieldValueInvalid spec.limited.limitResponse.queuing.handSize"}},
		{"zero queue length", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := limited()
			pl.Spec.Limited.LimitResponse.Queuing.QueueLengthLimit = 0
			return pl
		}, []string{"FieldValueInvalid spec.limited.limitResponse.queuing.queueLengthLimit"}},
		{"catch-all changed", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := MandatoryPriorityLevels()[1].DeepCopy()
			pl.Spec.Limited.NominalConcurrencyShares = &[]int32{50}[0]
			return pl
		}, []string{"FieldValueInvalid spec"}},
		{"exempt's shares are the operator's", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := MandatoryPriorityLevels()[0].DeepCopy()
			pl.Spec.Exempt.NominalConcurrencyShares = &[]int32{10}[0]
			return pl
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validatePriorityLevel(tt.pl()))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTables(t *testing.T) {
	fs := MandatoryFlowSchemas()[0]
	fs.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Type: "Dangling", Status: "False"}}
	row := flowSchemaTable.Row(fs)
	if want := []interface{}{"exempt", "exempt", int64(1), "<none>", "<unknown>", "False"}; !cmp.Equal(row, want) {
		t.Errorf("flowschema row %v, want %v", row, want)
	}
	row = priorityLevelTable.Row(SuggestedPriorityLevels()[5])
	if want := []interface{}{"global-default", "Limited", int64(20), int64(128), int64(6), int64(50), "<unknown>"}; !cmp.Equal(row, want) {
		t.Errorf("priority level row %v, want %v", row, want)
	}
	row = priorityLevelTable.Row(MandatoryPriorityLevels()[0])
	if want := []interface{}{"exempt", "Exempt", "<none>", "<none>", "<none>", "<none>", "<unknown>"}; !cmp.Equal(row, want) {
		t.Errorf("priority level row %v, want %v", row, want)
	}
}
