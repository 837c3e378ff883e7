package scheduler

import (
	"fmt"
	"sort"
	"strings"
)

// fitError is a decision that found no node: why each node failed, in
// upstream's FitError message format.
type fitError struct {
	numNodes int
	statuses map[string]*status // node name -> why it does not fit
	// preFilter, if set, is why the pod fits no node at all (a PreFilter
	// verdict); statuses is then empty.
	preFilter string
	// postFilter is preemption's addition ("preemption: ..."), if any.
	postFilter string
}

// errNoNodes is upstream's message when the cluster has no nodes at all.
const errNoNodes = "no nodes available to schedule pods"

// Error renders e as upstream does: "0/3 nodes are available: 1 Insufficient
// cpu, 2 node(s) were unschedulable." — each reason with how many nodes
// gave it, sorted as strings (or the PreFilter message alone), then
// preemption's message.
func (e *fitError) Error() string {
	if e.numNodes == 0 {
		return errNoNodes
	}
	var msg string
	if e.preFilter != "" {
		msg = fmt.Sprintf("0/%d nodes are available: %s.", e.numNodes, e.preFilter)
	} else {
		msg = nodesAvailable(e.numNodes, histogram(e.statuses))
	}
	if e.postFilter != "" {
		msg += " " + e.postFilter
	}
	return msg
}

func nodesAvailable(numNodes int, reasons []string) string {
	return fmt.Sprintf("0/%d nodes are available: %s.", numNodes, strings.Join(reasons, ", "))
}

// histogram counts each reason over the nodes and returns "count reason"
// strings sorted.
func histogram(statuses map[string]*status) []string {
	counts := map[string]int{}
	for _, st := range statuses {
		if st == nil {
			continue
		}
		for _, r := range st.reasons {
			counts[r]++
		}
	}
	out := make([]string, 0, len(counts))
	for r, c := range counts {
		out = append(out, fmt.Sprintf("%d %s", c, r))
	}
	sort.Strings(out)
	return out
}
