// Package rbac is skiff's RBAC authorizer: it decides requests with the
// semantics of upstream's RBAC authorizer (k8s.io/kubernetes
// plugin/pkg/auth/authorizer/rbac), checks that a user grants only what it
// holds (escalation prevention), computes aggregated ClusterRoles, and
// holds upstream's default roles and bindings (bootstrap.go).
//
// # How it fits
//
// The package depends only on k8s.io/api and k8s.io/apimachinery; it
// knows neither the API server nor client-go. The API server wires it:
//
//   - state: informers on the four rbac.authorization.k8s.io/v1 kinds call
//     Replace after the initial list and Put*/Delete* on each event
//     (tombstones unwrapped by the caller);
//   - decisions: an adapter from internal/apiserver.Attributes to
//     Attributes calls Authorize (User holds apiserver.User's name, uid,
//     groups and extra), and passes RulesFor through for
//     SelfSubjectRulesReview;
//   - writes: Role and ClusterRole create/update call ConfirmRole, binding
//     create/update call ConfirmBinding; an error that matches
//     ErrEscalation becomes 403 Forbidden with its message;
//   - aggregation: a controller calls AggregatedRules for each ClusterRole
//     with an aggregationRule and writes the result when it changed;
//   - bootstrap: ClusterRoles and ClusterRoleBindings are reconciled at
//     start (created when missing, restored when their autoupdate
//     annotation is "true").
//
// # Decisions
//
// A decision looks up, in an index kept by subject, only the bindings that
// name the user (by user name, by the user name of a ServiceAccount
// subject, "system:serviceaccount:<ns>:<name>", and by each of the user's
// groups): first the ClusterRoleBindings, then the RoleBindings of the
// request's namespace. Role rules are compiled when stored, so matching
// compares strings and allocates nothing. The groups of a service account
// (system:serviceaccounts, system:serviceaccounts:<ns>) and
// system:authenticated are the authenticator's to add, not this package's.
//
// # Where it differs from upstream
//
//   - Upstream walks every ClusterRoleBinding and every RoleBinding of the
//     namespace on each request; here an index by subject finds the few
//     that apply. The result is the same. When a binding names the user
//     through two subjects, the allow reason names the first matching
//     subject, as upstream.
//   - "resource/*" is not a wildcard, as upstream (which refused it on
//     purpose: kubernetes/enhancements#4961); only "*" and "*/subresource"
//     are.
//   - Upstream's bind/escalate checks ask the whole authorizer chain; here
//     they ask RBAC alone (the Node authorizer never grants those verbs).
//   - The bootstrap policy leaves out the per-controller roles
//     (system:controller:*), the CSR approver roles and add-on roles
//     (heapster, kube-aggregator, node-problem-detector, ...).
package rbac
