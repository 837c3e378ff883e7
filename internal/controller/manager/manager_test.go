package manager

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnabled(t *testing.T) {
	all := Names()
	without := func(n string) []string {
		var out []string
		for _, x := range all {
			if x != n {
				out = append(out, x)
			}
		}
		return out
	}
	tests := []struct {
		name    string
		list    []string
		want    []string
		wantErr bool
	}{
		{name: "none", list: nil, want: nil},
		{name: "all", list: []string{"*"}, want: all},
		{name: "all but namespace", list: []string{"*", "-namespace"}, want: without("namespace")},
		{name: "one", list: []string{"namespace"}, want: []string{"namespace"}},
		{name: "unknown", list: []string{"*", "-bogus"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Enabled(tt.list)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("enabled (-want +got):\n%s", diff)
			}
		})
	}
}
