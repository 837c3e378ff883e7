package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/chaos"
	"github.com/skiff-io/skiff/test/framework"
)

// TestChaos is the short version of skiff's own reliability run (the long
// one is `skiff bench chaos`): writers create, update (with
// resourceVersion) and delete ConfigMaps, two watchers follow them, and
// linearizability clients race on three keys, while the built server is
// killed with SIGKILL at random moments and restarted. It fails unless
// every acknowledged write is in the store afterwards with its value,
// every watcher saw each key's writes once each and in order with growing
// resourceVersions, and the clients' history is linearizable (package
// chaos says how each is checked). SKIFF_CHAOS_SEED repeats a run's
// choices; the kills' moments still race with the load.
func TestChaos(t *testing.T) {
	c := framework.StartBinary(t, skiffBin)
	// Each line is logged on its own: `make e2e` keeps only the lines
	// that name a _test.go file.
	logLines := func(prefix, text string) {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			t.Logf("%s%s", prefix, line)
		}
	}
	cfg := chaos.Config{
		Cycles:      10,
		MinUp:       time.Second,
		MaxUp:       4 * time.Second,
		LinTimeout:  2 * time.Minute,
		ArtifactDir: t.ArtifactDir(),
		Logf:        func(format string, args ...any) { t.Logf(format, args...) },
	}
	if s := os.Getenv("SKIFF_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SKIFF_CHAOS_SEED: %v", err)
		}
		cfg.Seed = seed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, c.Config, killable{t: t, c: c}, cfg)
	if err != nil {
		logLines("server log: ", tail(c.ServerLog(), 40))
		t.Fatalf("chaos run: %v", err)
	}
	var out strings.Builder
	rep.WriteTo(&out)
	logLines("", out.String())
	if len(rep.Violations) > 0 {
		logLines("server log: ", tail(c.ServerLog(), 40))
		t.Fatalf("the server broke a promise under kill -9 (seed %d): %d violations, listed above", rep.Seed, len(rep.Violations))
	}
	// A run that did nothing would pass too.
	if rep.Cycles != cfg.Cycles || rep.Writes.Acked() == 0 || rep.Lin.Ops == 0 || rep.Watchers[0].Events == 0 {
		t.Fatalf("the run did too little to check anything: %d cycles, %d acknowledged writes, %d linearizability operations",
			rep.Cycles, rep.Writes.Acked(), rep.Lin.Ops)
	}
}

// killable is the binary cluster as the chaos run kills and restarts it.
type killable struct {
	t *testing.T
	c *framework.Cluster
}

func (k killable) Kill9() error   { k.c.Kill9(k.t); return nil }
func (k killable) Restart() error { k.c.Restart(k.t); return nil }
