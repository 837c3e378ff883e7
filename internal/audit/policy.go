package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// GroupVersion is the API version of the policy and of the events.
const GroupVersion = "audit.k8s.io/v1"

// Level is how much of a request is recorded.
type Level string

const (
	// LevelNone records nothing.
	LevelNone Level = "None"
	// LevelMetadata records who did what to which object and the answer's
	// status, without the bodies.
	LevelMetadata Level = "Metadata"
	// LevelRequest adds the request body.
	LevelRequest Level = "Request"
	// LevelRequestResponse adds the response body.
	LevelRequestResponse Level = "RequestResponse"
)

// Less orders the levels: None < Metadata < Request < RequestResponse.
func (l Level) Less(other Level) bool { return l.rank() < other.rank() }

func (l Level) rank() int {
	switch l {
	case LevelMetadata:
		return 1
	case LevelRequest:
		return 2
	case LevelRequestResponse:
		return 3
	}
	return 0
}

// Stage is the point of a request's handling an event is written at.
type Stage string

const (
	// StageRequestReceived: the request was authenticated, nothing was
	// done yet.
	StageRequestReceived Stage = "RequestReceived"
	// StageResponseStarted: the status line of a long-running request
	// (watch, exec, logs, proxy) went out.
	StageResponseStarted Stage = "ResponseStarted"
	// StageResponseComplete: the answer is complete.
	StageResponseComplete Stage = "ResponseComplete"
	// StagePanic: the handler panicked.
	StagePanic Stage = "Panic"
)

var stages = []Stage{StageRequestReceived, StageResponseStarted, StageResponseComplete, StagePanic}

// Policy is upstream's audit.k8s.io/v1 Policy: the rules are tried in
// order and the first that matches a request decides its level; a request
// no rule matches is not audited.
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Rules             []PolicyRule `json:"rules"`
	// OmitStages are left out for every request, in addition to each
	// rule's.
	OmitStages []Stage `json:"omitStages,omitempty"`
	// OmitManagedFields drops metadata.managedFields from the recorded
	// bodies unless the matching rule says otherwise.
	OmitManagedFields bool `json:"omitManagedFields,omitempty"`
}

// PolicyRule matches requests by every field it sets (an empty field
// matches everything).
type PolicyRule struct {
	Level      Level    `json:"level"`
	Users      []string `json:"users,omitempty"`
	UserGroups []string `json:"userGroups,omitempty"`
	Verbs      []string `json:"verbs,omitempty"`
	// Resources and Namespaces match resource requests only;
	// NonResourceURLs non-resource requests only ("/healthz", "/metrics",
	// with a trailing "*" a prefix).
	Resources       []GroupResources `json:"resources,omitempty"`
	Namespaces      []string         `json:"namespaces,omitempty"`
	NonResourceURLs []string         `json:"nonResourceURLs,omitempty"`
	OmitStages      []Stage          `json:"omitStages,omitempty"`
	// OmitManagedFields, when set, overrides the policy's.
	OmitManagedFields *bool `json:"omitManagedFields,omitempty"`
}

// GroupResources names resources of one API group ("" the core group,
// "*" any). Resources may be "pods", "pods/log", "pods/*", "*/scale" or
// "*"; empty means all of the group.
type GroupResources struct {
	Group         string   `json:"group,omitempty"`
	Resources     []string `json:"resources,omitempty"`
	ResourceNames []string `json:"resourceNames,omitempty"`
}

// LoadPolicy reads and validates a policy file, YAML or JSON. A field the
// format does not know is tolerated, as upstream's lenient decoding does,
// and reported in warnings.
func LoadPolicy(path string) (p *Policy, warnings []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("audit policy: %w", err)
	}
	p, warnings, err = ParsePolicy(data)
	if err != nil {
		return nil, nil, fmt.Errorf("audit policy %s: %w", path, err)
	}
	return p, warnings, nil
}

// ParsePolicy decodes and validates a policy.
func ParsePolicy(data []byte) (*Policy, []string, error) {
	p := &Policy{}
	if err := yaml.Unmarshal(data, p); err != nil {
		return nil, nil, fmt.Errorf("decoding: %w", err)
	}
	var warnings []string
	if err := yaml.UnmarshalStrict(data, &Policy{}); err != nil {
		warnings = append(warnings, err.Error())
	}
	if p.APIVersion != GroupVersion || p.Kind != "Policy" {
		return nil, nil, fmt.Errorf("apiVersion %q, kind %q: want apiVersion %q, kind \"Policy\"", p.APIVersion, p.Kind, GroupVersion)
	}
	if err := p.validate(); err != nil {
		return nil, nil, err
	}
	if len(p.Rules) == 0 {
		return nil, nil, errors.New("the policy has no rules")
	}
	return p, warnings, nil
}

// validate checks the policy as upstream's validation does, reporting
// every fault with the path of its field.
func (p *Policy) validate() error {
	var errs []error
	bad := func(path string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	checkStages := func(path string, ss []Stage) {
		for i, s := range ss {
			if !validStage(s) {
				bad(fmt.Sprintf("%s[%d]", path, i), "unknown stage %q, want one of %s", s, joinStages())
			}
		}
	}
	checkStages("omitStages", p.OmitStages)
	for i, r := range p.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		switch r.Level {
		case LevelNone, LevelMetadata, LevelRequest, LevelRequestResponse:
		case "":
			bad(path+".level", "required, one of None, Metadata, Request, RequestResponse")
		default:
			bad(path+".level", "unknown level %q, want one of None, Metadata, Request, RequestResponse", r.Level)
		}
		for j, u := range r.NonResourceURLs {
			if u == "*" {
				continue
			}
			if !strings.HasPrefix(u, "/") {
				bad(fmt.Sprintf("%s.nonResourceURLs[%d]", path, j), "%q must begin with '/'", u)
			}
			if u != "" && strings.Contains(u[:len(u)-1], "*") {
				bad(fmt.Sprintf("%s.nonResourceURLs[%d]", path, j), "%q: a wildcard '*' must be the last character", u)
			}
		}
		if len(r.NonResourceURLs) > 0 && (len(r.Resources) > 0 || len(r.Namespaces) > 0) {
			bad(path+".nonResourceURLs", "a rule cannot apply to both resources and non-resource URLs")
		}
		for j, gr := range r.Resources {
			if gr.Group != "" && gr.Group != "*" {
				if msgs := validation.IsDNS1123Subdomain(gr.Group); len(msgs) > 0 {
					bad(fmt.Sprintf("%s.resources[%d].group", path, j), "%q: %s", gr.Group, strings.Join(msgs, ", "))
				}
			}
			if len(gr.ResourceNames) > 0 && len(gr.Resources) == 0 {
				bad(fmt.Sprintf("%s.resources[%d].resourceNames", path, j), "resourceNames needs at least one resource")
			}
		}
		checkStages(path+".omitStages", r.OmitStages)
	}
	return errors.Join(errs...)
}

func validStage(s Stage) bool {
	for _, v := range stages {
		if s == v {
			return true
		}
	}
	return false
}

func joinStages() string {
	var b bytes.Buffer
	for i, s := range stages {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}
