package core

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// metaErrFields returns the field path of each error, in order.
func metaErrFields(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

// metaWantFields fails t when errs does not name exactly the paths want.
func metaWantFields(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, metaErrFields(errs)); diff != "" {
		t.Errorf("error fields (-want +got):\n%s\nerrors: %v", diff, errs)
	}
}

func TestMetaNameIsDNS1035Label(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix bool
		ok     bool
	}{
		{"web", false, true},
		{"web-1", false, true},
		{"1web", false, false},
		{"web.a", false, false},
		{"Web", false, false},
		{"web-", true, true},
		{"web-", false, false},
	} {
		if got := len(NameIsDNS1035Label(tc.name, tc.prefix)) == 0; got != tc.ok {
			t.Errorf("NameIsDNS1035Label(%q, %v) ok = %v, want %v", tc.name, tc.prefix, got, tc.ok)
		}
	}
}
