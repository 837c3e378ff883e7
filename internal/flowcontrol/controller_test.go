package flowcontrol

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"

	fcregistry "github.com/skiff-io/skiff/internal/registry/flowcontrol"
)

// The server's 600 seats divided among upstream's levels by their shares
// (245 in all), rounded up; one request may take two thirds of its level.
func TestLimits(t *testing.T) {
	c := bootstrapController(t)
	type limits struct{ Limit, MaxSeats int }
	got := map[string]limits{}
	for name, l := range c.levels {
		if !l.exempt {
			got[name] = limits{l.limit, int(l.maxSeats.Load())}
		}
	}
	want := map[string]limits{
		"catch-all":       {13, 8},
		"system":          {74, 49},
		"node-high":       {98, 65},
		"leader-election": {25, 16},
		"workload-high":   {98, 65},
		"workload-low":    {245, 163},
		"global-default":  {49, 32},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
}

func TestListSeats(t *testing.T) {
	for _, tt := range []struct {
		name     string
		work     ListWork
		maxSeats int
		want     int
	}{
		{"10,000 from the cache", ListWork{Stored: 10000, FromCache: true}, 10, 10},
		{"capped by the level", ListWork{Stored: 10000, FromCache: true}, 8, 8},
		{"150 from the cache", ListWork{Stored: 150, FromCache: true}, 10, 2},
		{"empty", ListWork{Stored: 0, FromCache: true}, 10, 1},
		{"a page of 500 from etcd", ListWork{Stored: 10000, Limit: 500}, 10, 10},
		{"a page of 200 from etcd", ListWork{Stored: 10000, Limit: 200}, 10, 4},
		{"a page of 200 with a selector", ListWork{Stored: 10000, Limit: 200, Selective: true}, 10, 10},
		{"a page of 20 of 50 with a selector", ListWork{Stored: 50, Limit: 20, Selective: true}, 10, 1},
		{"by name", ListWork{Stored: 10000, FromCache: true, ByName: true}, 10, 1},
		{"not counted yet", ListWork{Stored: -1, FromCache: true}, 10, 1},
		{"no level maximum", ListWork{Stored: 1e6, FromCache: true}, 0, 10000},
		{"a level of one seat", ListWork{Stored: 1e6, FromCache: true}, 1, 1},
	} {
		if got := ListSeats(tt.work, tt.maxSeats); got != tt.want {
			t.Errorf("%s: %d seats, want %d", tt.name, got, tt.want)
		}
	}
}

func TestDeal(t *testing.T) {
	seen := map[int]int{}
	for flow := range 2000 {
		h := hashFlow("global-default", string(rune('a'+flow%26))+string(rune(flow)))
		hand := deal(h, 128, 6, nil)
		if again := deal(h, 128, 6, make([]int, 0, 6)); !cmp.Equal(hand, again) {
			t.Fatalf("the same hash dealt %v then %v", hand, again)
		}
		if len(hand) != 6 {
			t.Fatalf("hand %v, want 6 cards", hand)
		}
		in := map[int]bool{}
		for _, c := range hand {
			if c < 0 || c >= 128 || in[c] {
				t.Fatalf("hand %v: card %d out of the deck or dealt twice", hand, c)
			}
			in[c] = true
			seen[c]++
		}
	}
	// 12,000 cards over 128 queues: about 94 each.
	for q := range 128 {
		if seen[q] < 40 || seen[q] > 160 {
			t.Errorf("queue %d dealt %d times of 12,000, want about 94", q, seen[q])
		}
	}
	if got := deal(12345, 3, 5, nil); len(got) != 3 {
		t.Errorf("a hand larger than the deck: %v, want the whole deck", got)
	}
}

// Exempt requests run at once and hold nothing; limited ones wait at most
// a quarter of their deadline.
func TestAdmit(t *testing.T) {
	clock := newFakeClock()
	c := New(Config{Now: clock.Now})
	pls := append(fcregistry.MandatoryPriorityLevels(), fcregistry.SuggestedPriorityLevels()...)
	fss := append(fcregistry.MandatoryFlowSchemas(), fcregistry.SuggestedFlowSchemas()...)
	c.Configure(pls, fss)

	adminReq := resource(admin, "list", "", "", "pods", "")
	release, err := c.Admit(context.Background(), c.Classify(&adminReq), 10)
	if err != nil {
		t.Fatal(err)
	}
	release()

	// Fill global-default (49 seats) with alice's LISTs of 8.
	aliceReq := resource(alice, "list", "", "", "pods", "")
	cl := c.Classify(&aliceReq)
	var running []func()
	for range 6 {
		r, err := c.Admit(context.Background(), cl, 8)
		if err != nil {
			t.Fatal(err)
		}
		running = append(running, r)
	}
	// One seat is left: bob's GET runs.
	bobReq := resource(Request{User: "bob", Groups: []string{"system:authenticated"}}, "get", "", "default", "pods", "")
	r, err := c.Admit(context.Background(), c.Classify(&bobReq), 1)
	if err != nil {
		t.Fatalf("bob's GET beside alice's LISTs: %v", err)
	}
	r()
	// Alice's next LIST waits, and gives up before its deadline.
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(40*time.Millisecond))
	defer cancel()
	_, err = c.Admit(ctx, cl, 8)
	if rejectionReason(err) != reasonTimeout {
		t.Fatalf("alice's seventh LIST: %v, want %s", err, reasonTimeout)
	}
	for _, r := range running {
		r()
	}
}

func TestQueueWait(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	deadline := func(d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), now.Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	for _, tt := range []struct {
		ctx  context.Context
		want time.Duration
	}{
		{deadline(60 * time.Second), 15 * time.Second}, // the default request timeout
		{deadline(2 * time.Second), 500 * time.Millisecond},
		{deadline(10 * time.Minute), time.Minute},
		{context.Background(), time.Minute},
	} {
		if got := queueWait(tt.ctx, now); got != tt.want {
			t.Errorf("queueWait = %v, want %v", got, tt.want)
		}
	}
}

// A level that goes away lets its waiting requests run; its schemas stop
// matching at once.
func TestRemovedLevelDrains(t *testing.T) {
	c := New(Config{})
	pl := fcregistry.SuggestedPriorityLevels()[0].DeepCopy() // system: 30 shares
	fs := newTestSchema("mine", pl.Name)
	c.Configure([]*flowcontrolv1.PriorityLevelConfiguration{pl}, []*flowcontrolv1.FlowSchema{fs})
	req := resource(alice, "get", "", "ns", "pods", "")
	cl := c.Classify(&req)
	if cl.PriorityLevel() != pl.Name {
		t.Fatalf("classified into %s, want %s", cl.PriorityLevel(), pl.Name)
	}
	l := cl.fs.level
	var running []func()
	for range l.limit {
		r, err := c.Admit(context.Background(), cl, 1)
		if err != nil {
			t.Fatal(err)
		}
		running = append(running, r)
	}
	out := make(chan error, 1)
	go func() {
		r, err := c.Admit(context.Background(), cl, 1)
		if err == nil {
			r()
		}
		out <- err
	}()
	waitWaiting(t, l, 1)
	c.Configure(nil, []*flowcontrolv1.FlowSchema{fs})
	if got := c.Classify(&req); got.FlowSchema() != "catch-all" {
		t.Errorf("after its level went: classified as %s, want catch-all", got.FlowSchema())
	}
	running[0]()
	if err := <-out; err != nil {
		t.Errorf("the request waiting in the removed level: %v, want it run", err)
	}
	for _, r := range running[1:] {
		r()
	}
}

func newTestSchema(name, level string) *flowcontrolv1.FlowSchema {
	return &flowcontrolv1.FlowSchema{
		ObjectMeta: fcregistry.SuggestedFlowSchemas()[0].ObjectMeta,
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: level},
			MatchingPrecedence:         100,
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{rules(groupSubject("system:authenticated"),
				flowcontrolv1.ResourcePolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, Namespaces: []string{"*"}})},
		},
	}
}

func BenchmarkAdmitExempt(b *testing.B) {
	c := New(Config{})
	req := resource(loopback, "create", "", "bench", "pods", "binding")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cl := c.Classify(&req)
		release, _ := c.Admit(ctx, cl, 1)
		release()
	}
}

func BenchmarkAdmitLimited(b *testing.B) {
	c := bootstrapController(b)
	req := resource(alice, "get", "", "default", "pods", "")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cl := c.Classify(&req)
			release, err := c.Admit(ctx, cl, 1)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}
