package resourcemetrics

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var scrapeTime = time.Unix(1_700_000_100, 0)

func TestParse(t *testing.T) {
	const ms = int64(time.Millisecond)
	now := scrapeTime.UnixNano()
	key := func(ns, pod, ctr string) string { return ns + "\x00" + pod + "\x00" + ctr }
	tests := []struct {
		name string
		body string
		want reading
	}{{
		name: "ours",
		body: `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web-0"} 12.5 1700000000123
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="web-0"} 1.048576e+06 1700000000456
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="web-0"} 1.6999999e+09 1699999900000
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 1234.000000001 1700000000999
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 8.589934592e+09 1700000000999
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web-0"} 12.5 1700000000123
# TYPE resource_scrape_error gauge
resource_scrape_error 0
`,
		want: reading{
			nodeCPU:    cpuSample{at: 1700000000999 * ms, cum: 1234000000001},
			nodeMemory: memSample{bytes: 8589934592, ok: true},
			containers: []containerReading{{
				key:    key("default", "web-0", "app"),
				cpu:    cpuSample{at: 1700000000123 * ms, cum: 12_500_000_000},
				memory: memSample{bytes: 1 << 20, ok: true},
				start:  1_699_999_900 * int64(time.Second),
			}},
		},
	}, {
		name: "no timestamps take the scrape time",
		body: "container_cpu_usage_seconds_total{container=\"c\",namespace=\"n\",pod=\"p\"} 1\n" +
			"node_cpu_usage_seconds_total 2\n",
		want: reading{
			nodeCPU:    cpuSample{at: now, cum: 2e9},
			containers: []containerReading{{key: key("n", "p", "c"), cpu: cpuSample{at: now, cum: 1e9}}},
		},
	}, {
		name: "escaped label values, any order, other labels, blanks",
		body: "container_memory_working_set_bytes{ id=\"x\" , pod=\"a\\\"b\", namespace=\"back\\\\slash\",container=\"new\\nline\\t\",} 5 \t 1000\r\n",
		want: reading{containers: []containerReading{{
			key:    key(`back\slash`, `a"b`, "new\nline\\t"),
			memory: memSample{bytes: 5, ok: true},
		}}},
	}, {
		name: "NaN, Inf, negative and huge values are skipped, their container listed",
		body: `container_cpu_usage_seconds_total{container="c",namespace="n",pod="p"} NaN 1000
container_memory_working_set_bytes{container="c",namespace="n",pod="p"} +Inf 1000
container_start_time_seconds{container="c",namespace="n",pod="p"} -1
node_cpu_usage_seconds_total 1e300
node_memory_working_set_bytes -Inf
`,
		want: reading{containers: []containerReading{{key: key("n", "p", "c")}}},
	}, {
		name: "bad timestamps are skipped",
		body: `node_cpu_usage_seconds_total 1 -5
node_memory_working_set_bytes 1 1.5
container_cpu_usage_seconds_total{container="c",namespace="n",pod="p"} 1 99999999999999999999
`,
		// The container is listed still, so that its pod is not reported
		// without it.
		want: reading{containers: []containerReading{{key: key("n", "p", "c")}}},
	}, {
		name: "unknown families and lookalike names are skipped",
		body: `container_cpu_usage_seconds_total_extra{container="c",namespace="n",pod="p"} 1
container_cpu_usage_seconds{container="c",namespace="n",pod="p"} 1
node_swap_usage_bytes 7
scrape_duration_seconds{quantile="0.5"} 1
node_cpu_usage_seconds_total:rate 3
`,
		want: reading{},
	}, {
		name: "truncated and malformed lines are skipped",
		body: `container_cpu_usage_seconds_total{container="c",namespace="n"
container_memory_working_set_bytes{container="c",namespace="n",pod="p} 5
container_memory_working_set_bytes{container="c",namespace="n",pod="p"}
container_memory_working_set_bytes{container="c",namespace="n",pod="p"} 5 6 7
container_memory_working_set_bytes{container="c",namespace="n",pod="p" 5
container_memory_working_set_bytes{="c"} 5
container_memory_working_set_bytes{container="c",,namespace="n",pod="p"} 5
container_memory_working_set_bytes{container="c",namespace="n",pod="p"} 5 100
node_memory_working_set_bytes
node_memory_working_set_bytes{} 9
node_cpu_usage_seconds_total 12`, // no final "\n": cut short
		want: reading{
			nodeMemory: memSample{bytes: 9, ok: true},
			containers: []containerReading{{key: key("n", "p", "c"), memory: memSample{bytes: 5, ok: true}}},
		},
	}, {
		name: "containers need namespace, pod and container, without NUL",
		body: "container_memory_working_set_bytes{namespace=\"n\",pod=\"p\"} 5\n" +
			"container_memory_working_set_bytes{container=\"\",namespace=\"n\",pod=\"p\"} 5\n" +
			"container_memory_working_set_bytes{container=\"c\x00\",namespace=\"n\",pod=\"p\"} 5\n",
		want: reading{},
	}, {
		name: "a line longer than the buffer is skipped whole",
		body: "other{l=\"" + strings.Repeat("x", 3*maxLineBytes) + "\"} 1\n" +
			"node_memory_working_set_bytes 3\n",
		want: reading{nodeMemory: memSample{bytes: 3, ok: true}},
	}, {
		name: "the last value wins",
		body: "node_memory_working_set_bytes 3\nnode_memory_working_set_bytes 4\n",
		want: reading{nodeMemory: memSample{bytes: 4, ok: true}},
	}}
	opts := cmp.AllowUnexported(reading{}, cpuSample{}, memSample{}, containerReading{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newParser()
			if err := p.parse(strings.NewReader(tt.body), scrapeTime); err != nil {
				t.Fatalf("parse: %v", err)
			}
			got := p.out
			if len(got.containers) == 0 {
				got.containers = nil
			}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("reading (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBounds(t *testing.T) {
	t.Run("too many series", func(t *testing.T) {
		p := newParser()
		p.maxSeries = 3
		body := strings.Repeat("node_memory_working_set_bytes 1\n", 4)
		if err := p.parse(strings.NewReader(body), scrapeTime); !errors.Is(err, errTooManySeries) {
			t.Fatalf("parse = %v, want %v", err, errTooManySeries)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		p := newParser()
		if err := p.parse(endlessComments{}, scrapeTime); !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("parse = %v, want %v", err, errBodyTooLarge)
		}
	})
	t.Run("body of exactly the limit", func(t *testing.T) {
		p := newParser()
		r := io.LimitReader(endlessComments{}, maxBodyBytes)
		if err := p.parse(r, scrapeTime); err != nil {
			t.Fatalf("parse = %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		p := newParser()
		boom := errors.New("boom")
		r := io.MultiReader(strings.NewReader("node_memory_working_set_bytes 1\n"), errReader{boom})
		if err := p.parse(r, scrapeTime); !errors.Is(err, boom) {
			t.Fatalf("parse = %v, want %v", err, boom)
		}
	})
}

// endlessComments reads as an endless run of comment lines.
type endlessComments struct{}

func (endlessComments) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = '#'
		if i%64 == 63 {
			b[i] = '\n'
		}
	}
	return len(b), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzParse checks that no body makes the parser or the state built from
// its reading panic, and that the reading keeps its invariants.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"\n",
		"# TYPE x counter\n",
		"node_cpu_usage_seconds_total 1 1700000000000\nnode_memory_working_set_bytes 2\n",
		"container_cpu_usage_seconds_total{container=\"c\",namespace=\"n\",pod=\"p\"} 1.5 1700000000000\n",
		"container_memory_working_set_bytes{container=\"a\\\"b\",namespace=\"n\\\\\",pod=\"p\\n\"} 1e6\n",
		"container_start_time_seconds{container=\"c\",namespace=\"n\",pod=\"p\"} 1.7e9 1\n",
		"container_cpu_usage_seconds_total{container=\"c\",namespace=\"n\",pod=\"p\"} NaN\n",
		"container_cpu_usage_seconds_total{container=\"c\",namespace=\"n\",pod=\"p\",} +Inf -1\n",
		"container_cpu_usage_seconds_total{container=\"c\\",
		"node_cpu_usage_seconds_total{} 0x1p10 9223372036854775807\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p := newParser()
		p.maxSeries = 1000
		err := p.parse(strings.NewReader(string(body)), scrapeTime)
		if err != nil && !errors.Is(err, errTooManySeries) {
			t.Fatalf("parse: unexpected error %v", err)
		}
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range p.out.containers {
			if strings.Count(c.key, "\x00") != 2 {
				t.Fatalf("key %q has not three parts", c.key)
			}
			ns, pod, ctr := splitKey(c.key)
			if ns == "" || pod == "" || ctr == "" {
				t.Fatalf("key %q has an empty part", c.key)
			}
			if seen[c.key] {
				t.Fatalf("key %q read twice", c.key)
			}
			seen[c.key] = true
		}
		n := &nodeState{name: "n"}
		w := startWindow{min: time.Second, max: time.Hour}
		p.scratch = n.apply(&p.out, w, p.scratch)
		p.scratch = n.apply(&p.out, w, p.scratch)
		for _, pm := range n.pub.pods {
			if len(pm.Containers) == 0 {
				t.Fatalf("pod %s/%s published without containers", pm.Namespace, pm.Name)
			}
		}
	})
}
