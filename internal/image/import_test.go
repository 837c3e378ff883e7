package image

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseImportOutput(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []string
	}{
		{"none", "", nil},
		{"one", "unpacking skiff.io/pause:3.10 (sha256:ab12)...done\n", []string{"skiff.io/pause:3.10"}},
		{
			"two tags and noise",
			"ctr: some warning\nunpacking docker.io/library/busybox:1.36 (sha256:ab)...done\nunpacking docker.io/library/busybox:latest (sha256:ab)...done\n",
			[]string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"},
		},
		{"duplicate", "unpacking a:b (sha256:1)...done\nunpacking a:b (sha256:1)...done\n", []string{"a:b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseImportOutput(tt.out)); diff != "" {
				t.Errorf("refs (-want +got):\n%s", diff)
			}
		})
	}
}
