package job

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
)

// matchSuccessPolicy reports whether an Indexed Job's successPolicy is met
// by its succeeded indexes, with upstream's condition message naming the
// first rule that matched. A rule with succeededIndexes matches when all
// those indexes succeeded, or at least succeededCount of them; a rule with
// only succeededCount matches when that many indexes succeeded. A rule
// whose succeededIndexes select nothing below completions never matches.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completions int32, succeeded map[int]bool) (string, bool) {
	if policy == nil || len(succeeded) == 0 {
		return "", false
	}
	for i, rule := range policy.Rules {
		matched := false
		switch {
		case rule.SucceededIndexes != nil:
			want := parseIndexes(*rule.SucceededIndexes, int(completions))
			if len(want) == 0 {
				continue
			}
			n := 0
			for ix := range want {
				if succeeded[ix] {
					n++
				}
			}
			matched = n == len(want) || (rule.SucceededCount != nil && n >= int(*rule.SucceededCount))
		case rule.SucceededCount != nil:
			matched = len(succeeded) >= int(*rule.SucceededCount)
		}
		if matched {
			return fmt.Sprintf("Matched rules at index %d", i), true
		}
	}
	return "", false
}
