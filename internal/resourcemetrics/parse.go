package resourcemetrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Bounds on one kubelet's answer. A kubelet that exceeds them fails its
// scrape with an error that names the bound, rather than making the API
// server hold an unbounded body or index.
const (
	// maxBodyBytes caps the body read from one kubelet. Ours writes about
	// 400 bytes per container, so 32 MiB is far beyond any real node.
	maxBodyBytes = 32 << 20
	// maxSeries caps the series of the families we read, per kubelet.
	maxSeries = 100_000
	// maxLineBytes is the longest line we read; a longer one (a huge HELP
	// text, an unknown family with enormous labels) is skipped whole.
	maxLineBytes = 64 << 10
)

var (
	errBodyTooLarge  = fmt.Errorf("body exceeds %d bytes", maxBodyBytes)
	errTooManySeries = errors.New("too many series")
)

// family is one of the metric families of /metrics/resource that we read.
type family uint8

const (
	famUnknown family = iota
	famContainerCPU
	famContainerMemory
	famContainerStart
	famNodeCPU
	famNodeMemory
)

func familyOf(name []byte) family {
	switch string(name) { // the compiler does not allocate for this conversion
	case "container_cpu_usage_seconds_total":
		return famContainerCPU
	case "container_memory_working_set_bytes":
		return famContainerMemory
	case "container_start_time_seconds":
		return famContainerStart
	case "node_cpu_usage_seconds_total":
		return famNodeCPU
	case "node_memory_working_set_bytes":
		return famNodeMemory
	}
	return famUnknown
}

// reading is what one kubelet's /metrics/resource said, reduced to the
// values we use. Units are already ours: nanoseconds of CPU, bytes, Unix
// nanoseconds. A value the kubelet did not give (or gave as NaN, ±Inf, a
// negative or an out-of-range number) is absent.
type reading struct {
	nodeCPU    cpuSample
	nodeMemory memSample
	containers []containerReading
}

type cpuSample struct {
	at  int64  // Unix ns of the reading; 0 when absent
	cum uint64 // cumulative CPU time, ns
}

type memSample struct {
	bytes uint64
	ok    bool
}

// containerReading is one container's values from one scrape.
type containerReading struct {
	// key is namespace + "\x00" + pod + "\x00" + container: unique, and
	// sorting by it groups a pod's containers together in name order.
	key    string
	cpu    cpuSample
	memory memSample
	start  int64 // container start, Unix ns; 0 when absent
}

// parser reads /metrics/resource bodies. It is reused across scrapes so
// that a steady state allocates little: the line buffer, the label scratch
// and the index survive; container keys are taken from the previous scrape
// of the same node when they are unchanged (see known). A parser is not
// safe for concurrent use.
type parser struct {
	br        *bufio.Reader
	maxSeries int

	// known holds the containers of the node's previous scrape, whose keys
	// are reused so that an unchanged container does not allocate its key
	// again. May be nil.
	known map[string]*containerState

	// scratch is for nodeState.apply.
	scratch []*containerState

	out    reading
	index  map[string]int // key -> position in out.containers
	series int
	labels []byte // unescaped label values of the current line
	key    []byte
}

func newParser() *parser {
	return &parser{
		br:        bufio.NewReaderSize(nil, maxLineBytes),
		maxSeries: maxSeries,
		index:     make(map[string]int),
	}
}

// parse reads a whole body. Samples without a timestamp are taken at now.
// It is tolerant of what it does not know: comments, other families,
// unknown labels, malformed lines and a truncated last line are skipped.
// It fails only on a read error, a body over maxBodyBytes or more than
// maxSeries series of our families. The result is in p.out until the next
// call.
func (p *parser) parse(r io.Reader, now time.Time) error {
	p.out.nodeCPU, p.out.nodeMemory = cpuSample{}, memSample{}
	p.out.containers = p.out.containers[:0]
	clear(p.index)
	p.series = 0
	p.br.Reset(&limitReader{r: r, n: maxBodyBytes})
	nowNS := now.UnixNano()
	for {
		line, err := p.br.ReadSlice('\n')
		switch {
		case err == nil:
			if err := p.line(line[:len(line)-1], nowNS); err != nil {
				return err
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if err := p.skipRestOfLine(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		case err == io.EOF:
			// The format ends every line with "\n"; text after the last one
			// is a line cut short, and its value may be cut short too.
			return nil
		default:
			return err
		}
	}
}

// skipRestOfLine discards up to and including the next "\n".
func (p *parser) skipRestOfLine() error {
	for {
		_, err := p.br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// line reads one line without its "\n". Lines it cannot use are skipped
// (nil error); only the series bound fails the parse.
func (p *parser) line(l []byte, now int64) error {
	l = trimBlank(l)
	if len(l) == 0 || l[0] == '#' {
		return nil
	}
	n := 0
	for n < len(l) && isNameByte(l[n], n == 0) {
		n++
	}
	fam := familyOf(l[:n])
	if fam == famUnknown {
		return nil
	}
	p.series++
	if p.series > p.maxSeries {
		return fmt.Errorf("%w: more than %d", errTooManySeries, p.maxSeries)
	}
	rest := l[n:]

	// Labels. Only container, namespace and pod matter; the values are
	// unescaped into p.labels and remembered as spans of it.
	p.labels = p.labels[:0]
	var ctr, ns, pod span
	if len(rest) > 0 && rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = skipBlank(rest)
			if len(rest) == 0 {
				return nil
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			k := 0
			for k < len(rest) && isLabelByte(rest[k], k == 0) {
				k++
			}
			if k == 0 {
				return nil
			}
			name := rest[:k]
			rest = skipBlank(rest[k:])
			if len(rest) == 0 || rest[0] != '=' {
				return nil
			}
			rest = skipBlank(rest[1:])
			if len(rest) == 0 || rest[0] != '"' {
				return nil
			}
			start := len(p.labels)
			var ok bool
			if rest, ok = p.unescape(rest[1:]); !ok {
				return nil
			}
			v := span{start, len(p.labels)}
			switch string(name) {
			case "container":
				ctr = v
			case "namespace":
				ns = v
			case "pod":
				pod = v
			}
			rest = skipBlank(rest)
			if len(rest) > 0 && rest[0] == ',' {
				rest = rest[1:]
			} else if len(rest) == 0 || rest[0] != '}' {
				return nil
			}
		}
	} else if len(rest) == 0 || !isBlank(rest[0]) {
		return nil // the name runs into something that is not a separator
	}

	// Value and optional timestamp, and nothing else.
	rest = skipBlank(rest)
	valueTok, rest := token(rest)
	rest = skipBlank(rest)
	tsTok, rest := token(rest)
	if len(valueTok) == 0 || len(skipBlank(rest)) != 0 {
		return nil
	}
	// A value we cannot use (NaN, ±Inf, negative, out of range, or a bad
	// timestamp) is skipped, but its container still counts as listed, so
	// that its pod is not reported without it.
	v, err := strconv.ParseFloat(string(valueTok), 64)
	ok := err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0
	at := now
	if len(tsTok) > 0 {
		ms, err := strconv.ParseInt(string(tsTok), 10, 64)
		ok = ok && err == nil && ms > 0 && ms <= math.MaxInt64/int64(time.Millisecond)
		at = ms * int64(time.Millisecond)
	}

	switch fam {
	case famNodeCPU:
		if cum, vok := nanos(v); ok && vok {
			p.out.nodeCPU = cpuSample{at: at, cum: cum}
		}
		return nil
	case famNodeMemory:
		if b, vok := bytesOf(v); ok && vok {
			p.out.nodeMemory = memSample{bytes: b, ok: true}
		}
		return nil
	}

	if ctr.empty() || ns.empty() || pod.empty() {
		return nil
	}
	c := p.container(ns, pod, ctr)
	if c == nil || !ok {
		return nil
	}
	switch fam {
	case famContainerCPU:
		if cum, ok := nanos(v); ok {
			c.cpu = cpuSample{at: at, cum: cum}
		}
	case famContainerMemory:
		if b, ok := bytesOf(v); ok {
			c.memory = memSample{bytes: b, ok: true}
		}
	case famContainerStart:
		// The value is the start time in seconds; the sample's own
		// timestamp does not matter.
		if t, ok := nanos(v); ok && t > 0 {
			c.start = int64(t)
		}
	}
	return nil
}

// container returns the reading of the container named by the spans of
// p.labels, adding it on first sight. It returns nil for a name holding
// a NUL byte, which would make keys ambiguous.
func (p *parser) container(ns, pod, ctr span) *containerReading {
	p.key = p.key[:0]
	for i, s := range [...]span{ns, pod, ctr} {
		v := p.labels[s.from:s.to]
		for _, b := range v {
			if b == 0 {
				return nil
			}
		}
		if i > 0 {
			p.key = append(p.key, 0)
		}
		p.key = append(p.key, v...)
	}
	if i, ok := p.index[string(p.key)]; ok {
		return &p.out.containers[i]
	}
	var key string
	if c, ok := p.known[string(p.key)]; ok {
		key = c.key
	} else {
		key = string(p.key)
	}
	p.index[key] = len(p.out.containers)
	p.out.containers = append(p.out.containers, containerReading{key: key})
	return &p.out.containers[len(p.out.containers)-1]
}

// unescape appends the label value at the start of b, up to its closing
// quote, to p.labels and returns what follows the quote. The text format
// escapes backslash, double quote and newline; any other escape is kept as
// written.
func (p *parser) unescape(b []byte) ([]byte, bool) {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			return b[i+1:], true
		case '\\':
			if i+1 == len(b) {
				return nil, false
			}
			i++
			switch b[i] {
			case '\\':
				p.labels = append(p.labels, '\\')
			case '"':
				p.labels = append(p.labels, '"')
			case 'n':
				p.labels = append(p.labels, '\n')
			default:
				p.labels = append(p.labels, '\\', b[i])
			}
		default:
			p.labels = append(p.labels, c)
		}
	}
	return nil, false // no closing quote
}

// span is a part of parser.labels; from == to is an empty value.
type span struct{ from, to int }

func (s span) empty() bool { return s.from == s.to }

// nanos converts seconds to whole nanoseconds, false when out of range.
func nanos(seconds float64) (uint64, bool) {
	ns := math.Round(seconds * 1e9)
	if !(ns >= 0 && ns < math.MaxInt64) {
		return 0, false
	}
	return uint64(ns), true
}

// bytesOf converts a byte count, false when it does not fit a Quantity.
func bytesOf(v float64) (uint64, bool) {
	if !(v >= 0 && v < math.MaxInt64) {
		return 0, false
	}
	return uint64(v), true
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func skipBlank(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	return b
}

// trimBlank trims blanks at both ends, and a "\r" at the end that a
// Windows-minded proxy may have added.
func trimBlank(b []byte) []byte {
	b = skipBlank(b)
	for len(b) > 0 && (isBlank(b[len(b)-1]) || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// token splits b at its first blank.
func token(b []byte) (tok, rest []byte) {
	i := 0
	for i < len(b) && !isBlank(b[i]) {
		i++
	}
	return b[:i], b[i:]
}

// isNameByte reports whether c may appear in a metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*).
func isNameByte(c byte, first bool) bool {
	return c == ':' || isLabelByte(c, first)
}

// isLabelByte reports whether c may appear in a label name
// ([a-zA-Z_][a-zA-Z0-9_]*).
func isLabelByte(c byte, first bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || !first && c >= '0' && c <= '9'
}

// limitReader reads at most n bytes of r and fails with errBodyTooLarge
// when r has more.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		k, err := l.r.Read(one[:])
		if k > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	k, err := l.r.Read(b)
	l.n -= int64(k)
	return k, err
}
