package server

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-io/skiff/internal/apiserver"
)

func TestParseModes(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{"Node,RBAC", []string{"Node", "RBAC"}, ""},
		{" RBAC ", []string{"RBAC"}, ""},
		{"AlwaysAllow", []string{"AlwaysAllow"}, ""},
		{"Node,RBAC,AlwaysDeny", []string{"Node", "RBAC", "AlwaysDeny"}, ""},
		{"", nil, "at least one authorization-mode must be passed"},
		{"RBAC,Webhook", nil, `authorization-mode "Webhook" is not a valid mode`},
		{"RBAC,RBAC", nil, `authorization-mode ["RBAC" "RBAC"] has mode specified more than once`},
	}
	for _, c := range cases {
		got, err := parseModes(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseModes(%q) = %v, want error %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, c.want) {
			t.Errorf("parseModes(%q) = %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

type fixed struct {
	allow  bool
	reason string
}

func (f fixed) Authorize(context.Context, apiserver.Attributes) (bool, string, error) {
	return f.allow, f.reason, nil
}

// The first authorizer that allows decides; a refusal carries every
// reason given; system:masters is allowed before any mode.
func TestUnion(t *testing.T) {
	ctx := context.Background()
	eve := apiserver.Attributes{User: &apiserver.User{Name: "eve"}}
	u := union{privileged{}, fixed{false, "no relationship"}, fixed{false, ""}, fixed{false, "Everything is forbidden."}}
	if ok, reason, _ := u.Authorize(ctx, eve); ok || reason != "no relationship\nEverything is forbidden." {
		t.Errorf("refused union = %v %q", ok, reason)
	}
	if ok, _, _ := append(u, fixed{true, ""}).Authorize(ctx, eve); !ok {
		t.Error("a later allow did not allow")
	}
	root := apiserver.Attributes{User: &apiserver.User{Name: "root", Groups: []string{"system:masters"}}}
	if ok, _, _ := u.Authorize(ctx, root); !ok {
		t.Error("system:masters refused")
	}
	a, err := newAuthorization("Node,RBAC")
	if err != nil || a.node == nil || a.rbac == nil {
		t.Fatalf("newAuthorization(Node,RBAC) = %+v %v", a, err)
	}
	if _, ok := a.authorizer().(union); !ok {
		t.Errorf("Node,RBAC authorizer is %T, want a union", a.authorizer())
	}
}
