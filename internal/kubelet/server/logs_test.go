package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sampleLog has a partial line, both streams and a second apart stamps.
const sampleLog = `2024-01-01T00:00:01.000000001Z stdout F one
2024-01-01T00:00:02.5Z stderr F two
2024-01-01T00:00:03Z stdout P thr
2024-01-01T00:00:03.1Z stdout F ee
not a cri line
2024-01-01T00:00:04Z stdout F four
`

func TestCopyLog(t *testing.T) {
	tests := []struct {
		name string
		opts logOptions
		want string
	}{
		{"all", logOptions{tail: -1}, "one\ntwo\nthree\nfour\n"},
		{"tail 1", logOptions{tail: 1}, "four\n"},
		{"tail 2 counts file lines", logOptions{tail: 2}, "four\n"}, // the unparseable line is the other
		{"tail 3 starts in a partial", logOptions{tail: 3}, "ee\nfour\n"},
		{"tail 4", logOptions{tail: 4}, "three\nfour\n"},
		{"tail 0", logOptions{tail: 0}, ""},
		{"tail beyond", logOptions{tail: 100}, "one\ntwo\nthree\nfour\n"},
		{"since", logOptions{tail: -1, since: time.Date(2024, 1, 1, 0, 0, 2, 0, time.UTC)}, "two\nthree\nfour\n"},
		{"since drops stamp equal or after only", logOptions{tail: -1, since: time.Date(2024, 1, 1, 0, 0, 3, 50, time.UTC)}, "ee\nfour\n"},
		{"timestamps", logOptions{tail: -1, timestamps: true},
			"2024-01-01T00:00:01.000000001Z one\n2024-01-01T00:00:02.500000000Z two\n" +
				"2024-01-01T00:00:03.000000000Z three\n2024-01-01T00:00:04.000000000Z four\n"},
		{"limit", logOptions{tail: -1, limit: 6}, "one\ntw"},
		{"limit with timestamps", logOptions{tail: -1, limit: 33, timestamps: true}, "2024-01-01T00:00:01.000000001Z on"},
		{"tail and limit", logOptions{tail: 2, limit: 3}, "fou"},
	}
	path := writeLog(t, t.TempDir(), "0.log", sampleLog)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out bytes.Buffer
			if err := copyLog(context.Background(), f, tt.opts, logFollow{}, &out); err != nil {
				t.Fatalf("copyLog: %v", err)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTailOffset(t *testing.T) {
	tests := []struct {
		content string
		n       int64
		want    int64
	}{
		{"", 3, 0},
		{"a\nb\nc\n", 1, 4},
		{"a\nb\nc\n", 2, 2},
		{"a\nb\nc\n", 3, 0},
		{"a\nb\nc", 1, 4}, // an unterminated last line is a line
		{"a\nb\nc\n", 0, 6},
		{"a\nb\nc\n", -1, 0},
		{strings.Repeat("x", 20000) + "\n" + strings.Repeat("y", 9000) + "\n", 1, 20001}, // across blocks
	}
	for _, tt := range tests {
		path := writeLog(t, t.TempDir(), "x.log", tt.content)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tailOffset(f, tt.n)
		f.Close()
		if err != nil || got != tt.want {
			t.Errorf("tailOffset(%.10q…, %d) = %d, %v; want %d", tt.content, tt.n, got, err, tt.want)
		}
	}
}

func logsFixture(t *testing.T) (*harness, *fakeRuntime, string) {
	dir := t.TempDir()
	cur := writeLog(t, dir, "1.log", sampleLog)
	prev := writeLog(t, dir, "0.log", "2023-12-31T23:59:59Z stdout F before the restart\n")
	pods := &fakePods{
		pods: []*v1.Pod{testPod("default", "web", "u1", "app", "sidecar")},
		containers: map[string]fakeContainer{
			"default/web/app":     {id: "c1", logPath: cur, prevID: "c0", prevLogPath: prev},
			"default/web/sidecar": {id: "c2", logPath: filepath.Join(dir, "missing.log")},
		},
	}
	rt := &fakeRuntime{}
	return startServer(t, pods, rt, nil), rt, cur
}

func TestContainerLogs(t *testing.T) {
	h, _, _ := logsFixture(t)
	tests := []struct {
		path     string
		wantCode int
		want     string // the body, or the Status message for errors
	}{
		{"/containerLogs/default/web/app", 200, "one\ntwo\nthree\nfour\n"},
		{"/containerLogs/default/web/app?tailLines=1&timestamps=true", 200, "2024-01-01T00:00:04.000000000Z four\n"},
		{"/containerLogs/default/web/app?tail=1", 200, "four\n"},
		{"/containerLogs/default/web/app?tail=all", 200, "one\ntwo\nthree\nfour\n"},
		{"/containerLogs/default/web/app?sinceTime=2024-01-01T00:00:02Z", 200, "two\nthree\nfour\n"},
		{"/containerLogs/default/web/app?sinceSeconds=1", 200, ""}, // all lines are old
		{"/containerLogs/default/web/app?limitBytes=5", 200, "one\ntw"[:5]},
		{"/containerLogs/default/web/app?previous=true", 200, "before the restart\n"},
		{"/containerLogs/default/web/app?follow=true", 200, "one\ntwo\nthree\nfour\n"}, // exited: copies and ends
		{"/containerLogs/default/web/nope", 400, `container "nope" in pod "web" is not available`},
		{"/containerLogs/default/web/sidecar?previous=1", 400, `previous terminated container "sidecar" in pod "web" not found`},
		{"/containerLogs/default/gone/app", 404, `pod "gone" does not exist`},
		{"/containerLogs/default/web/app?tailLines=-1", 422, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{"/containerLogs/default/web/app?limitBytes=0", 422, "limitBytes: Invalid value: 0: must be greater than 0"},
		{"/containerLogs/default/web/app?sinceSeconds=5&sinceTime=2024-01-01T00:00:02Z", 422, "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"/containerLogs/default/web/app?follow=maybe", 400, `unable to decode query parameter follow="maybe"`},
		{"/containerLogs/default/web/app?sinceTime=yesterday", 400, `unable to decode query parameter sinceTime="yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := h.get(t, tt.path)
			if code != tt.wantCode {
				t.Fatalf("code = %d, want %d; body %q", code, tt.wantCode, body)
			}
			got := body
			if code != http.StatusOK {
				st := decodeStatus(t, body)
				if st.Code != int32(code) {
					t.Errorf("Status.Code = %d, want %d", st.Code, code)
				}
				got = st.Message
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A log file that cannot be opened is a 400 with the reason.
	code, body := h.get(t, "/containerLogs/default/web/sidecar")
	if st := decodeStatus(t, body); code != 400 || !strings.Contains(st.Message, "missing.log") {
		t.Errorf("missing log file: %d %q", code, st.Message)
	}
}

func TestContainerLogsFollow(t *testing.T) {
	h, rt, path := logsFixture(t)
	rt.setState("c1", runtimeapi.ContainerState_CONTAINER_RUNNING)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+"/containerLogs/default/web/app?follow=true&tailLines=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	readLine := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read followed log: %v (got %q)", err, l)
		}
		return l
	}
	if got := readLine(); got != "four\n" {
		t.Fatalf("first followed line = %q, want the tail", got)
	}

	// Appended lines arrive, including one written in two pieces.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("2024-01-01T00:00:05Z stdout F five\n2024-01-01T00:00:06Z stderr F si"); err != nil {
		t.Fatal(err)
	}
	if got := readLine(); got != "five\n" {
		t.Fatalf("appended line = %q, want five", got)
	}
	if _, err := f.WriteString("x\n"); err != nil {
		t.Fatal(err)
	}
	if got := readLine(); got != "six\n" {
		t.Fatalf("line finished later = %q, want six", got)
	}

	// Once the container stops, the rest is copied and the response ends.
	if _, err := f.WriteString("2024-01-01T00:00:07Z stdout F seven\n"); err != nil {
		t.Fatal(err)
	}
	rt.setState("c1", runtimeapi.ContainerState_CONTAINER_EXITED)
	rest, err := readAll(lines)
	if err != nil {
		t.Fatalf("read to the end after the container stopped: %v", err)
	}
	if rest != "seven\n" {
		t.Errorf("after stop got %q, want seven", rest)
	}
}

func TestContainerLogsFollowCancel(t *testing.T) {
	h, rt, _ := logsFixture(t)
	rt.setState("c1", runtimeapi.ContainerState_CONTAINER_RUNNING)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+"/containerLogs/default/web/app?follow=true&tailLines=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	cancel()
	// The client's read ends, with an error or, when Go's transport sees
	// the server finish the stream first, at EOF: either is fine. What
	// matters is the server's side.
	read := make(chan struct{})
	go func() {
		_, _ = readAll(bufio.NewReader(resp.Body))
		close(read)
	}()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("reading a cancelled follow did not end")
	}
	// The server's handler must end: stop fails the test unless Start
	// returns, which waits for every handler, while the container still
	// runs (a follower that ignored the cancel would never return).
	h.stop()
}

func readAll(r *bufio.Reader) (string, error) {
	b, err := io.ReadAll(r)
	return string(b), err
}
