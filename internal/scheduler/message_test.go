package scheduler

import "testing"

func TestFitErrorMessage(t *testing.T) {
	cpu := &status{reasons: []string{"Insufficient cpu"}}
	mem := &status{reasons: []string{"Insufficient memory"}}
	both := &status{reasons: []string{"Insufficient cpu", "Insufficient memory"}}
	taint := &status{reasons: []string{"node(s) had untolerated taint {node-role: x}"}, unresolvable: true}
	tests := []struct {
		name string
		err  *fitError
		want string
	}{
		{"one reason", &fitError{numNodes: 3, statuses: map[string]*status{"a": cpu, "b": cpu, "c": cpu}},
			"0/3 nodes are available: 3 Insufficient cpu."},
		{"sorted with counts", &fitError{numNodes: 5, statuses: map[string]*status{"a": taint, "b": mem, "c": taint, "d": mem, "e": taint}},
			"0/5 nodes are available: 2 Insufficient memory, 3 node(s) had untolerated taint {node-role: x}."},
		{"several reasons per node", &fitError{numNodes: 2, statuses: map[string]*status{"a": both, "b": cpu}},
			"0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."},
		{"with preemption", &fitError{numNodes: 3, statuses: map[string]*status{"a": cpu, "b": cpu, "c": cpu},
			postFilter: "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."},
			"0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."},
		{"no nodes", &fitError{}, "no nodes available to schedule pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
