package audit

import (
	"encoding/json"
	"net/http"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// HeaderAuditID is the header that carries a request's audit ID: a client
// may set it, and the server echoes it (or the ID it made up) on every
// answer.
const HeaderAuditID = "Audit-Id"

// Event is upstream's audit.k8s.io/v1 Event: one stage of one request.
type Event struct {
	metav1.TypeMeta `json:",inline"`

	Level   Level     `json:"level"`
	AuditID types.UID `json:"auditID"`
	Stage   Stage     `json:"stage"`

	RequestURI string `json:"requestURI"`
	// Verb is the Kubernetes verb, or for a non-resource request the
	// lower-case HTTP method.
	Verb string `json:"verb"`
	// User is the authenticated user; ImpersonatedUser the user it acted
	// as, if it impersonated.
	User                   authnv1.UserInfo        `json:"user"`
	ImpersonatedUser       *authnv1.UserInfo       `json:"impersonatedUser,omitempty"`
	AuthenticationMetadata *AuthenticationMetadata `json:"authenticationMetadata,omitempty"`
	SourceIPs              []string                `json:"sourceIPs,omitempty"`
	UserAgent              string                  `json:"userAgent,omitempty"`
	ObjectRef              *ObjectReference        `json:"objectRef,omitempty"`
	// ResponseStatus has the code of every answer, and the status,
	// reason, message and details of a failure.
	ResponseStatus *metav1.Status `json:"responseStatus,omitempty"`

	// RequestObject and ResponseObject are JSON documents, at the
	// Request and RequestResponse levels.
	RequestObject  json.RawMessage `json:"requestObject,omitempty"`
	ResponseObject json.RawMessage `json:"responseObject,omitempty"`

	RequestReceivedTimestamp metav1.MicroTime `json:"requestReceivedTimestamp"`
	StageTimestamp           metav1.MicroTime `json:"stageTimestamp"`

	// Annotations are set by the request's handling: the authorization
	// decision ("authorization.k8s.io/decision", ".../reason"),
	// admission plugins ("pod-security.kubernetes.io/...").
	Annotations map[string]string `json:"annotations,omitempty"`
}

// AuthenticationMetadata says how the user was authenticated.
type AuthenticationMetadata struct {
	// ImpersonationConstraint is the verb that allowed a constrained
	// impersonation ("impersonate:user-info", ...).
	ImpersonationConstraint string `json:"impersonationConstraint,omitempty"`
}

// ObjectReference is what a resource request is about.
type ObjectReference struct {
	Resource        string    `json:"resource,omitempty"`
	Namespace       string    `json:"namespace,omitempty"`
	Name            string    `json:"name,omitempty"`
	UID             types.UID `json:"uid,omitempty"`
	APIGroup        string    `json:"apiGroup,omitempty"`
	APIVersion      string    `json:"apiVersion,omitempty"`
	ResourceVersion string    `json:"resourceVersion,omitempty"`
	Subresource     string    `json:"subresource,omitempty"`
}

// The annotations of the authorization decision, as upstream's.
const (
	AnnotationDecision = "authorization.k8s.io/decision"
	AnnotationReason   = "authorization.k8s.io/reason"
	DecisionAllow      = "allow"
	DecisionForbid     = "forbid"
	// ReasonError is the reason when the authorizer failed.
	ReasonError = "internal error"
	// AnnotationOmitted says which body was not recorded, and why (skiff
	// only: upstream records every body, re-encoded as JSON).
	AnnotationOmitted = "audit.skiff.io/omitted"
)

// maxUserAgent bounds the recorded User-Agent, as upstream.
const (
	maxUserAgent    = 1024
	userAgentSuffix = "...TRUNCATED"
)

// NewEvent returns the event of a request, with what the request itself
// says: its URI, source addresses and user agent, received at received.
// The caller fills in the rest.
func NewEvent(r *http.Request, id types.UID, level Level, received metav1.MicroTime) *Event {
	ev := &Event{
		TypeMeta:                 metav1.TypeMeta{Kind: "Event", APIVersion: GroupVersion},
		Level:                    level,
		AuditID:                  id,
		RequestURI:               r.URL.RequestURI(),
		UserAgent:                r.UserAgent(),
		RequestReceivedTimestamp: received,
	}
	if len(ev.UserAgent) > maxUserAgent {
		ev.UserAgent = ev.UserAgent[:maxUserAgent] + userAgentSuffix
	}
	if ips := utilnet.SourceIPs(r); len(ips) > 0 {
		ev.SourceIPs = make([]string, len(ips))
		for i, ip := range ips {
			ev.SourceIPs[i] = ip.String()
		}
	}
	return ev
}
