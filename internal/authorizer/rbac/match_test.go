package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func res(verb, group, resource, sub, name string) Attributes {
	return Attributes{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name, ResourceRequest: true}
}

func path(verb, p string) Attributes { return Attributes{Verb: verb, Path: p} }

func TestRuleAllows(t *testing.T) {
	pods := rbacv1.PolicyRule{APIGroups: l(""), Resources: l("pods"), Verbs: l("get", "list")}
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		req  Attributes
		want bool
	}{
		{"exact", pods, res("get", "", "pods", "", "p"), true},
		{"other verb", pods, res("delete", "", "pods", "", "p"), false},
		{"other group", pods, res("get", "apps", "pods", "", ""), false},
		{"other resource", pods, res("get", "", "secrets", "", ""), false},
		{"resource does not grant subresource", pods, res("get", "", "pods", "log", "p"), false},
		{"all verbs", on(l(""), l("pods"), l("*")), res("escalate", "", "pods", "", ""), true},
		{"all groups", on(l("*"), l("deployments"), l("get")), res("get", "apps", "deployments", "", ""), true},
		{"all resources", on(l(""), l("*"), l("get")), res("get", "", "secrets", "", ""), true},
		{"all resources covers subresources", on(l(""), l("*"), l("get")), res("get", "", "pods", "log", ""), true},
		{"subresource exact", on(l(""), l("pods/log"), l("get")), res("get", "", "pods", "log", "p"), true},
		{"subresource does not grant resource", on(l(""), l("pods/log"), l("get")), res("get", "", "pods", "", "p"), false},
		{"subresource of other resource", on(l(""), l("pods/log"), l("get")), res("get", "", "nodes", "log", ""), false},
		{"prefix of resource is not it", on(l(""), l("pod/log"), l("get")), res("get", "", "pods", "log", ""), false},
		{"*/subresource", on(l("apps"), l("*/scale"), l("update")), res("update", "apps", "deployments", "scale", "d"), true},
		{"*/subresource other sub", on(l("apps"), l("*/scale"), l("update")), res("update", "apps", "deployments", "status", "d"), false},
		{"*/subresource not the resource", on(l("apps"), l("*/scale"), l("update")), res("update", "apps", "deployments", "", "d"), false},
		{"resource/* is not a wildcard", on(l(""), l("pods/*"), l("get")), res("get", "", "pods", "log", ""), false},
		{"resource/* is literal", on(l(""), l("pods/*"), l("get")), res("get", "", "pods", "*", ""), true},
		{"resourceNames match", onNamed(l(""), l("configmaps"), l("a", "b"), l("get")), res("get", "", "configmaps", "", "b"), true},
		{"resourceNames other", onNamed(l(""), l("configmaps"), l("a"), l("get")), res("get", "", "configmaps", "", "c"), false},
		{"resourceNames and no name (list)", onNamed(l(""), l("configmaps"), l("a"), l("list")), res("list", "", "configmaps", "", ""), false},
		{"url exact", urls(l("/healthz"), "get"), path("get", "/healthz"), true},
		{"url exact is not a prefix", urls(l("/healthz"), "get"), path("get", "/healthz/etcd"), false},
		{"url trailing *", urls(l("/healthz/*"), "get"), path("get", "/healthz/etcd"), true},
		{"url trailing * is a plain prefix", urls(l("/api*"), "get"), path("get", "/apis/apps"), true},
		{"url *", urls(l("*"), "*"), path("post", "/anything"), true},
		{"url verb", urls(l("/metrics"), "get"), path("post", "/metrics"), false},
		{"url rule does not grant resources", urls(l("*"), "*"), res("get", "", "pods", "", ""), false},
		{"resource rule does not grant urls", on(l("*"), l("*"), l("*")), path("get", "/metrics"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleAllows(tt.req, tt.rule); got != tt.want {
				t.Errorf("RuleAllows(%+v, %+v) = %v, want %v", tt.req, tt.rule, got, tt.want)
			}
		})
	}
}
