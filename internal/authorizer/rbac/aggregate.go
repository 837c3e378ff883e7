package rbac

import (
	"fmt"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AggregatedRules computes the rules of a ClusterRole with an
// aggregationRule from the ClusterRoles in all, as upstream's
// clusterrole-aggregation controller does: for each selector in order,
// the matching ClusterRoles sorted by name (the role itself left out),
// their rules in order, each distinct rule once. ok is false when cr has
// no aggregationRule (its rules are its own). An empty selector matches
// every ClusterRole, as upstream. The caller (a controller) writes the
// result to cr.rules when it differs (equality.Semantic.DeepEqual).
func AggregatedRules(cr *rbacv1.ClusterRole, all []*rbacv1.ClusterRole) (rules []rbacv1.PolicyRule, ok bool, err error) {
	if cr.AggregationRule == nil {
		return nil, false, nil
	}
	sorted := append([]*rbacv1.ClusterRole(nil), all...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	rules = []rbacv1.PolicyRule{}
	for i := range cr.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&cr.AggregationRule.ClusterRoleSelectors[i])
		if err != nil {
			return nil, true, fmt.Errorf("clusterrole %q: aggregationRule selector %d: %w", cr.Name, i, err)
		}
		for _, other := range sorted {
			if other.Name == cr.Name || !sel.Matches(labels.Set(other.Labels)) {
				continue
			}
			for _, r := range other.Rules {
				if !hasRule(rules, r) {
					rules = append(rules, r)
				}
			}
		}
	}
	return rules, true, nil
}

func hasRule(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	for i := range rules {
		if equality.Semantic.DeepEqual(rules[i], r) {
			return true
		}
	}
	return false
}
