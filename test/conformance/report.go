package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The part of ginkgo's JSON report (a list of github.com/onsi/ginkgo/v2
// types.Report) the summary reads.
type suiteReport struct {
	SuiteDescription string
	StartTime        time.Time
	EndTime          time.Time
	SpecReports      []specReport
}

type specReport struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	RunTime                 time.Duration
	Failure                 struct {
		Message string
	}
	CapturedGinkgoWriterOutput string
}

// earlyReturns are lines upstream's tests log right before they return
// without failing. A test whose log holds one tested nothing and is
// counted as failed, never as passed.
var earlyReturns = []string{
	// test/utils/crd: the webhook and CRD tests return when their CRD
	// cannot be created.
	"Unexpected error while creating CustomResourceDefinition",
}

// Outcome is what a test of the selection came to.
type Outcome string

// The outcomes. ReturnedEarly is a reported pass that tested nothing.
const (
	Passed        Outcome = "passed"
	Failed        Outcome = "failed"
	ReturnedEarly Outcome = "returned early"
	NotRun        Outcome = "not run"
)

// Result is one test of the selection.
type Result struct {
	Name    string // the full text: containers and leaf, space-separated
	SIG     string // "sig-apps"; "other" when the name carries none
	Outcome Outcome
	Cause   string // one line: the failure, the skip reason or the early return
	RunTime time.Duration
}

// Counts are a group's totals.
type Counts struct{ Tests, Passed, Failed, NotRun int }

func (c *Counts) add(o Outcome) {
	c.Tests++
	switch o {
	case Passed:
		c.Passed++
	case NotRun:
		c.NotRun++
	default:
		c.Failed++
	}
}

// Summary is a run's results over its selection (the tests the focus
// matches and the skip does not).
type Summary struct {
	Results []Result // sorted by SIG, then name
	All     Counts
	BySIG   map[string]*Counts
	Start   time.Time
	End     time.Time
}

// ReadReport reads ginkgo's JSON report.
func ReadReport(path string) ([]suiteReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []suiteReport
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reports, nil
}

var sigName = regexp.MustCompile(`\[(sig-[a-z0-9-]+)\]`)

// Summarize classifies the tests of the selection. A spec is in the
// selection when its full name matches focus and not skip (skip may be
// nil); specs outside it are those the run filtered out. A spec reported
// more than once (a retried process) counts once, by its last report.
func Summarize(reports []suiteReport, focus, skip *regexp.Regexp) Summary {
	s := Summary{BySIG: map[string]*Counts{}}
	byName := map[string]Result{}
	for _, r := range reports {
		if s.Start.IsZero() || (!r.StartTime.IsZero() && r.StartTime.Before(s.Start)) {
			s.Start = r.StartTime
		}
		if r.EndTime.After(s.End) {
			s.End = r.EndTime
		}
		for _, sp := range r.SpecReports {
			if sp.LeafNodeType != "It" {
				continue
			}
			name := strings.TrimSpace(strings.Join(append(append([]string{}, sp.ContainerHierarchyTexts...), sp.LeafNodeText), " "))
			if !focus.MatchString(name) || (skip != nil && skip.MatchString(name)) {
				continue
			}
			res := Result{Name: name, SIG: "other", RunTime: sp.RunTime}
			if m := sigName.FindStringSubmatch(name); m != nil {
				res.SIG = m[1]
			}
			res.Outcome, res.Cause = classify(sp)
			byName[name] = res
		}
	}
	for _, res := range byName {
		s.Results = append(s.Results, res)
		s.All.add(res.Outcome)
		c := s.BySIG[res.SIG]
		if c == nil {
			c = &Counts{}
			s.BySIG[res.SIG] = c
		}
		c.add(res.Outcome)
	}
	sort.Slice(s.Results, func(i, j int) bool {
		a, b := s.Results[i], s.Results[j]
		if a.SIG != b.SIG {
			return a.SIG < b.SIG
		}
		return a.Name < b.Name
	})
	return s
}

func classify(sp specReport) (Outcome, string) {
	switch sp.State {
	case "passed":
		for _, marker := range earlyReturns {
			if strings.Contains(sp.CapturedGinkgoWriterOutput, marker) {
				return ReturnedEarly, "returned early: " + lineWith(sp.CapturedGinkgoWriterOutput, marker)
			}
		}
		return Passed, ""
	case "skipped", "pending":
		return NotRun, firstLine(sp.Failure.Message)
	}
	cause := firstLine(sp.Failure.Message)
	if cause == "" {
		cause = sp.State
	} else if sp.State != "failed" {
		cause = sp.State + ": " + cause
	}
	return Failed, cause
}

// maxCause bounds a cause's length in the report.
const maxCause = 240

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return clip(l)
		}
	}
	return ""
}

func lineWith(s, marker string) string {
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, marker); i >= 0 {
			return clip(strings.TrimSpace(l[i:]))
		}
	}
	return marker
}

func clip(s string) string {
	if len(s) > maxCause {
		return s[:maxCause] + "…"
	}
	return s
}

// Meta is what the report says about the run besides its results.
type Meta struct {
	Version  string // upstream's version of e2e.test
	Skiff    string // skiff's commit
	Machine  string
	Command  string
	Focus    string
	Skip     string
	Procs    int
	Nodes    int
	Timeout  string   // the suite's time limit
	Images   []string // one line each: how each image the suite names was made
	Duration time.Duration
}

// Markdown renders docs/conformance.md.
func (s Summary) Markdown(m Meta) string {
	var b strings.Builder
	pct := func(n, of int) string {
		if of == 0 {
			return "0"
		}
		return fmt.Sprintf("%.1f", 100*float64(n)/float64(of))
	}
	day := s.End
	if day.IsZero() {
		day = time.Now()
	}
	fmt.Fprintf(&b, "# Conformance\n\n")
	fmt.Fprintf(&b, "Upstream's conformance suite (`e2e.test` %s) against skiff %s, %s, on %s.\n", m.Version, m.Skiff, day.UTC().Format("2006-01-02"), m.Machine)
	fmt.Fprintf(&b, "Written by `%s`: focus `%s`, skip `%s`, %d ginkgo processes, %d nodes, time limit %s; the run took %s.\n\n",
		m.Command, m.Focus, m.Skip, m.Procs, m.Nodes, m.Timeout, m.Duration.Round(time.Minute))
	early := 0
	for _, r := range s.Results {
		if r.Outcome == ReturnedEarly {
			early++
		}
	}
	fmt.Fprintf(&b, "**%d of %d passed (%s %%)**; %d failed, %d not run.", s.All.Passed, s.All.Tests, pct(s.All.Passed, s.All.Tests), s.All.Failed, s.All.NotRun)
	if early > 0 {
		fmt.Fprintf(&b, " %d of the failures were reported passed by the suite but returned early without testing; they count as failed.", early)
	}
	b.WriteString("\n\n| SIG | tests | passed | failed | not run |\n|---|---|---|---|---|\n")
	sigs := make([]string, 0, len(s.BySIG))
	for sig := range s.BySIG {
		sigs = append(sigs, sig)
	}
	sort.Strings(sigs)
	for _, sig := range sigs {
		c := s.BySIG[sig]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", sig, c.Tests, c.Passed, c.Failed, c.NotRun)
	}
	fmt.Fprintf(&b, "| **all** | %d | %d | %d | %d |\n", s.All.Tests, s.All.Passed, s.All.Failed, s.All.NotRun)
	section := func(title string, keep func(Outcome) bool) {
		var rows []Result
		for _, r := range s.Results {
			if keep(r.Outcome) {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n## %s (%d)\n\n", title, len(rows))
		for _, r := range rows {
			cause := strings.ReplaceAll(r.Cause, "`", "'")
			fmt.Fprintf(&b, "- %s\n  - %s\n", r.Name, cause)
		}
	}
	section("Failures", func(o Outcome) bool { return o == Failed || o == ReturnedEarly })
	section("Not run", func(o Outcome) bool { return o == NotRun })
	if len(m.Images) > 0 {
		b.WriteString("\n## Images\n\n")
		for _, l := range m.Images {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	return b.String()
}
