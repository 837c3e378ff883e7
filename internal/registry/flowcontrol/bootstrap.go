package flowcontrol

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The user and group names the bootstrap configuration refers to
// (upstream's k8s.io/apiserver/pkg/authentication/user).
const (
	groupMasters         = "system:masters"
	groupNodes           = "system:nodes"
	groupAuthenticated   = "system:authenticated"
	groupUnauthenticated = "system:unauthenticated"
	groupServiceAccounts = "system:serviceaccounts"
	userControllerMgr    = "system:kube-controller-manager"
	userScheduler        = "system:kube-scheduler"
)

// MandatoryPriorityLevels returns fresh copies of the two priority levels
// that are always in force: exempt and catch-all. The server reconciles
// them at every start (package server); the dispatcher (package
// internal/flowcontrol) imagines them while they are not stored.
func MandatoryPriorityLevels() []*flowcontrolv1.PriorityLevelConfiguration {
	return []*flowcontrolv1.PriorityLevelConfiguration{
		newPriorityLevel(flowcontrolv1.PriorityLevelConfigurationNameExempt, flowcontrolv1.PriorityLevelConfigurationSpec{
			Type:   flowcontrolv1.PriorityLevelEnablementExempt,
			Exempt: &flowcontrolv1.ExemptPriorityLevelConfiguration{NominalConcurrencyShares: i32(0), LendablePercent: i32(0)},
		}),
		newPriorityLevel(flowcontrolv1.PriorityLevelConfigurationNameCatchAll, limitedSpec(5, 0, nil)),
	}
}

// MandatoryFlowSchemas returns fresh copies of the exempt (system:masters,
// which includes skiff's own components on the loopback) and catch-all
// schemas.
func MandatoryFlowSchemas() []*flowcontrolv1.FlowSchema {
	return []*flowcontrolv1.FlowSchema{
		newFlowSchema(flowcontrolv1.FlowSchemaNameExempt, flowcontrolv1.PriorityLevelConfigurationNameExempt, 1, "",
			everything(groups(groupMasters))),
		newFlowSchema(flowcontrolv1.FlowSchemaNameCatchAll, flowcontrolv1.PriorityLevelConfigurationNameCatchAll, 10000,
			flowcontrolv1.FlowDistinguisherMethodByUserType, everything(groups(groupUnauthenticated, groupAuthenticated))),
	}
}

// SuggestedPriorityLevels returns fresh copies of upstream's suggested
// priority levels, which the server creates when they are missing.
func SuggestedPriorityLevels() []*flowcontrolv1.PriorityLevelConfiguration {
	return []*flowcontrolv1.PriorityLevelConfiguration{
		// Node agents: what keeps the cluster and its running pods alive.
		newPriorityLevel("system", limitedSpec(30, 33, queuing(64, 6, 50))),
		// Node heartbeats and status, apart from the rest of system so
		// that nodes stay Ready while pods start.
		newPriorityLevel("node-high", limitedSpec(40, 25, queuing(64, 6, 50))),
		// Controllers' leader election.
		newPriorityLevel("leader-election", limitedSpec(10, 0, queuing(16, 4, 50))),
		// The scheduler, the controller manager and kube-system's
		// service accounts.
		newPriorityLevel("workload-high", limitedSpec(40, 50, queuing(128, 6, 50))),
		// Other service accounts.
		newPriorityLevel("workload-low", limitedSpec(100, 90, queuing(128, 6, 50))),
		// Everyone else.
		newPriorityLevel("global-default", limitedSpec(20, 50, queuing(128, 6, 50))),
	}
}

// SuggestedFlowSchemas returns fresh copies of upstream's suggested flow
// schemas, in order of precedence.
func SuggestedFlowSchemas() []*flowcontrolv1.FlowSchema {
	byUser, byNamespace := flowcontrolv1.FlowDistinguisherMethodByUserType, flowcontrolv1.FlowDistinguisherMethodByNamespaceType
	getCreateUpdate := []string{"get", "create", "update"}
	return []*flowcontrolv1.FlowSchema{
		newFlowSchema("probes", flowcontrolv1.PriorityLevelConfigurationNameExempt, 2, "", flowcontrolv1.PolicyRulesWithSubjects{
			Subjects:         groups(groupUnauthenticated, groupAuthenticated),
			NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/readyz", "/livez"}}},
		}),
		newFlowSchema("system-leader-election", "leader-election", 100, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: append(users(userControllerMgr, userScheduler), kubeSystemServiceAccounts(flowcontrolv1.NameAll)...),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				resourceRule(getCreateUpdate, coordinationv1.GroupName, []string{"leases"}, false),
			},
		}),
		newFlowSchema("endpoint-controller", "workload-high", 150, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: append(users(userControllerMgr), kubeSystemServiceAccounts("endpoint-controller", "endpointslicemirroring-controller")...),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				resourceRule(getCreateUpdate, "", []string{"endpoints"}, false),
			},
		}),
		newFlowSchema("workload-leader-election", "leader-election", 200, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: kubeSystemServiceAccounts(flowcontrolv1.NameAll),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				resourceRule(getCreateUpdate, "", []string{"endpoints", "configmaps"}, false),
				resourceRule(getCreateUpdate, coordinationv1.GroupName, []string{"leases"}, false),
			},
		}),
		newFlowSchema("system-node-high", "node-high", 400, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: groups(groupNodes),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				resourceRule([]string{flowcontrolv1.VerbAll}, "", []string{"nodes", "nodes/status"}, true),
				resourceRule([]string{flowcontrolv1.VerbAll}, coordinationv1.GroupName, []string{"leases"}, false),
			},
		}),
		newFlowSchema("system-nodes", "system", 500, byUser, everything(groups(groupNodes))),
		newFlowSchema("kube-controller-manager", "workload-high", 800, byNamespace, everything(users(userControllerMgr))),
		newFlowSchema("kube-scheduler", "workload-high", 800, byNamespace, everything(users(userScheduler))),
		newFlowSchema("kube-system-service-accounts", "workload-high", 900, byNamespace, everything(kubeSystemServiceAccounts(flowcontrolv1.NameAll))),
		newFlowSchema("service-accounts", "workload-low", 9000, byUser, everything(groups(groupServiceAccounts))),
		newFlowSchema("global-default", "global-default", 9900, byUser, everything(groups(groupUnauthenticated, groupAuthenticated))),
	}
}

// bootstrapObjectMeta marks a bootstrap object for automatic update, as
// upstream's are.
func bootstrapObjectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Annotations: map[string]string{flowcontrolv1.AutoUpdateAnnotationKey: "true"}}
}

func newPriorityLevel(name string, spec flowcontrolv1.PriorityLevelConfigurationSpec) *flowcontrolv1.PriorityLevelConfiguration {
	return &flowcontrolv1.PriorityLevelConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: flowcontrolv1.SchemeGroupVersion.String(), Kind: "PriorityLevelConfiguration"},
		ObjectMeta: bootstrapObjectMeta(name),
		Spec:       spec,
	}
}

func limitedSpec(shares, lendable int32, q *flowcontrolv1.QueuingConfiguration) flowcontrolv1.PriorityLevelConfigurationSpec {
	resp := flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject}
	if q != nil {
		resp = flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: q}
	}
	return flowcontrolv1.PriorityLevelConfigurationSpec{
		Type: flowcontrolv1.PriorityLevelEnablementLimited,
		Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
			NominalConcurrencyShares: i32(shares),
			LendablePercent:          i32(lendable),
			LimitResponse:            resp,
		},
	}
}

func queuing(queues, handSize, lengthLimit int32) *flowcontrolv1.QueuingConfiguration {
	return &flowcontrolv1.QueuingConfiguration{Queues: queues, HandSize: handSize, QueueLengthLimit: lengthLimit}
}

func newFlowSchema(name, level string, precedence int32, distinguisher flowcontrolv1.FlowDistinguisherMethodType, rules flowcontrolv1.PolicyRulesWithSubjects) *flowcontrolv1.FlowSchema {
	fs := &flowcontrolv1.FlowSchema{
		TypeMeta:   metav1.TypeMeta{APIVersion: flowcontrolv1.SchemeGroupVersion.String(), Kind: "FlowSchema"},
		ObjectMeta: bootstrapObjectMeta(name),
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: level},
			MatchingPrecedence:         precedence,
			Rules:                      []flowcontrolv1.PolicyRulesWithSubjects{rules},
		},
	}
	if distinguisher != "" {
		fs.Spec.DistinguisherMethod = &flowcontrolv1.FlowDistinguisherMethod{Type: distinguisher}
	}
	return fs
}

// everything is a rule that matches every request of subjects.
func everything(subjects []flowcontrolv1.Subject) flowcontrolv1.PolicyRulesWithSubjects {
	return flowcontrolv1.PolicyRulesWithSubjects{
		Subjects: subjects,
		ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
			Verbs: []string{flowcontrolv1.VerbAll}, APIGroups: []string{flowcontrolv1.APIGroupAll},
			Resources: []string{flowcontrolv1.ResourceAll}, Namespaces: []string{flowcontrolv1.NamespaceEvery}, ClusterScope: true,
		}},
		NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{
			Verbs: []string{flowcontrolv1.VerbAll}, NonResourceURLs: []string{flowcontrolv1.NonResourceAll},
		}},
	}
}

func resourceRule(verbs []string, group string, resources []string, clusterScope bool) flowcontrolv1.ResourcePolicyRule {
	return flowcontrolv1.ResourcePolicyRule{
		Verbs: verbs, APIGroups: []string{group}, Resources: resources,
		Namespaces: []string{flowcontrolv1.NamespaceEvery}, ClusterScope: clusterScope,
	}
}

func groups(names ...string) []flowcontrolv1.Subject {
	out := make([]flowcontrolv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: n}})
	}
	return out
}

func users(names ...string) []flowcontrolv1.Subject {
	out := make([]flowcontrolv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: n}})
	}
	return out
}

func kubeSystemServiceAccounts(names ...string) []flowcontrolv1.Subject {
	out := make([]flowcontrolv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount,
			ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Namespace: metav1.NamespaceSystem, Name: n}})
	}
	return out
}
