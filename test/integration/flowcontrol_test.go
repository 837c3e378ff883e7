package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// rawUser sends requests with a user's bearer token, without client-go's
// retries (it retries a 429 by itself), so that a test sees every answer.
type rawUser struct {
	host   string
	client *http.Client
}

func newRawUser(t *testing.T, c *framework.Cluster, token string) rawUser {
	t.Helper()
	cfg := c.Config
	if token != "" {
		cfg = rest.AnonymousClientConfig(c.Config)
		cfg.BearerToken = token
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rawUser{host: strings.TrimSuffix(cfg.Host, "/"), client: hc}
}

// answer is what a request got.
type answer struct {
	code   int
	header http.Header
	body   string
	err    error
	done   time.Time
}

func (u rawUser) get(ctx context.Context, path string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.host+path, nil)
	if err != nil {
		return answer{err: err}
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return answer{err: err, done: time.Now()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, header: resp.Header, body: string(b), err: err, done: time.Now()}
}

const (
	headerFS = flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID
	headerPL = flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID
)

// A user who floods a priority level is held to its seats: past them her
// requests queue in her own few queues, and past those she gets 429 with
// Retry-After. Meanwhile another user of the same level is served ahead of
// her queued requests, users of other levels and the admin are served at
// once, and every answer names its flow schema and priority level.
func TestPriorityAndFairness(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("alice-token,alice,1,\"testers\"\ncarol-token,carol,2,\"testers\"\nbob-token,bob,3,\"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithControllers(), framework.WithTokenFile(tokens))
	ctx := ctxT(t)
	cs := c.Client
	fc := cs.FlowcontrolV1()
	bindCluster(t, cs, "testers-view", "view",
		rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "testers"},
		rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "bob"})

	// The bootstrap configuration is there, its schemas not dangling.
	framework.Eventually(t, 30*time.Second, func() bool {
		fs, err := fc.FlowSchemas().Get(ctx, "global-default", metav1.GetOptions{})
		return err == nil && len(fs.Status.Conditions) == 1 && fs.Status.Conditions[0].Status == flowcontrolv1.ConditionFalse
	})
	globalFS, err := fc.FlowSchemas().Get(ctx, "global-default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exemptFS, err := fc.FlowSchemas().Get(ctx, "exempt", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A level of 3 seats (1 share of 246: ceil(600/246)) for the testers,
	// one per user, with 16 queues of one request and hands of 4.
	shares := int32(1)
	pl, err := fc.PriorityLevelConfigurations().Create(ctx, &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "tiny"},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: &shares,
				LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue,
					Queuing: &flowcontrolv1.QueuingConfiguration{Queues: 16, HandSize: 4, QueueLengthLimit: 1}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fc.FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "testers"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "tiny"},
			MatchingPrecedence:         500,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: "testers"}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"},
					Resources: []string{"*"}, Namespaces: []string{"*"}, ClusterScope: true}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	alice, carol, bob, admin := newRawUser(t, c, "alice-token"), newRawUser(t, c, "carol-token"), newRawUser(t, c, "bob-token"), newRawUser(t, c, "")
	framework.Eventually(t, 10*time.Second, func() bool {
		a := alice.get(ctx, "/api/v1/namespaces/default/configmaps")
		return a.code == http.StatusOK && a.header.Get(headerFS) == string(fs.UID) && a.header.Get(headerPL) == string(pl.UID)
	})

	// A LIST at a resourceVersion far ahead holds its seat until the watch
	// cache gives up on reaching it (3 s, then 504).
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv, _ := strconv.ParseInt(pods.ResourceVersion, 10, 64)
	slow := fmt.Sprintf("/api/v1/namespaces/default/pods?resourceVersion=%d", rv+1_000_000)

	const flood = 10
	floodStart := time.Now()
	answers := make(chan answer, flood)
	for range flood {
		go func() { answers <- alice.get(ctx, slow) }()
	}
	// 3 run and 4 wait (one in each queue of her hand); the other 3 are
	// refused at once.
	var rejected []answer
	for range 3 {
		a := <-answers
		if a.code != http.StatusTooManyRequests {
			t.Fatalf("alice's flood: %d %s %v, want 429 for the requests past her queues", a.code, a.body, a.err)
		}
		rejected = append(rejected, a)
	}
	for _, a := range rejected {
		if a.header.Get("Retry-After") == "" || a.header.Get(headerFS) != string(fs.UID) || a.header.Get(headerPL) != string(pl.UID) {
			t.Errorf("a 429 without Retry-After or the PF headers: %v", a.header)
		}
	}
	if time.Since(floodStart) > 2*time.Second {
		t.Logf("the refusals took %v (the machine is slow)", time.Since(floodStart))
	}

	// Bob is in global-default and the admin exempt: served now, while
	// alice's requests still hold the tiny level.
	b := bob.get(ctx, "/api/v1/namespaces/default/pods")
	if b.code != http.StatusOK || b.header.Get(headerFS) != string(globalFS.UID) {
		t.Fatalf("bob during the flood: %d %s, headers %v", b.code, b.body, b.header)
	}
	if a := admin.get(ctx, "/api/v1/namespaces/default/pods"); a.code != http.StatusOK || a.header.Get(headerFS) != string(exemptFS.UID) {
		t.Fatalf("the admin during the flood: %d %s, headers %v", a.code, a.body, a.header)
	}
	select {
	case a := <-answers:
		t.Fatalf("one of alice's LISTs ended (%d) before bob's and the admin's requests were served", a.code)
	default:
	}

	// Carol shares the level: she waits for a seat, but not behind
	// alice's queue: she is served in the first round that frees seats,
	// before any of alice's queued requests has run its course.
	carolDone := make(chan answer, 1)
	go func() { carolDone <- carol.get(ctx, "/api/v1/namespaces/default/configmaps") }()
	var c1 answer
	select {
	case c1 = <-carolDone:
	case <-time.After(30 * time.Second):
		t.Fatal("carol was not served")
	}
	if c1.code != http.StatusOK || c1.header.Get(headerFS) != string(fs.UID) {
		t.Fatalf("carol: %d %s", c1.code, c1.body)
	}
	var served []answer
	for range flood - 3 {
		served = append(served, <-answers)
	}
	ranAfterCarol := 0
	for _, a := range served {
		if a.code != http.StatusGatewayTimeout {
			t.Errorf("alice's admitted LIST: %d %s, want the watch cache's 504 after its wait", a.code, a.body)
		}
		if a.done.After(c1.done) {
			ranAfterCarol++
		}
	}
	if ranAfterCarol < 4 {
		t.Errorf("%d of alice's 7 admitted requests ended after carol's, want her 4 queued ones at least", ranAfterCarol)
	}

	// The rejections are counted.
	m := admin.get(ctx, "/metrics")
	want := `apiserver_flowcontrol_rejected_requests_total{flow_schema="testers",priority_level="tiny",reason="queue-full"} 3`
	if !strings.Contains(m.body, want) {
		t.Errorf("/metrics lacks %q", want)
	}

	// A schema naming a missing level is dangling, and matches nothing.
	if _, err := fc.FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "nowhere"},
			MatchingPrecedence:         100,
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:      []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "bob"}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, Namespaces: []string{"*"}}},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() bool {
		o, err := fc.FlowSchemas().Get(ctx, "orphan", metav1.GetOptions{})
		return err == nil && len(o.Status.Conditions) == 1 && o.Status.Conditions[0].Type == flowcontrolv1.FlowSchemaConditionDangling &&
			o.Status.Conditions[0].Status == flowcontrolv1.ConditionTrue
	})
	if b := bob.get(ctx, "/api/v1/namespaces/default/pods"); b.header.Get(headerFS) != string(globalFS.UID) {
		t.Errorf("bob matched the dangling schema: %v", b.header)
	}

	// Deleting the testers' schema puts alice back in global-default.
	if err := fc.FlowSchemas().Delete(ctx, "testers", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() bool {
		return alice.get(ctx, "/api/v1/namespaces/default/configmaps").header.Get(headerFS) == string(globalFS.UID)
	})

	// The mandatory objects cannot be changed; a deleted suggested one is
	// back after a restart, as upstream's.
	catchAll, err := fc.FlowSchemas().Get(ctx, "catch-all", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	catchAll.Spec.MatchingPrecedence = 9999
	if _, err := fc.FlowSchemas().Update(ctx, catchAll, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("changing catch-all: %v, want 422", err)
	}
	if err := fc.FlowSchemas().Delete(ctx, "global-default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	framework.Eventually(t, 30*time.Second, func() bool {
		_, err := c.Client.FlowcontrolV1().FlowSchemas().Get(ctx, "global-default", metav1.GetOptions{})
		return err == nil
	})
}

// With --enable-priority-and-fairness=false the in-flight bounds apply:
// no request is classified, and the objects are still served.
func TestPriorityAndFairnessOff(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers(), func(cfg *server.Config) { cfg.EnablePriorityAndFairness = false })
	ctx := ctxT(t)
	a := newRawUser(t, c, "").get(ctx, "/api/v1/namespaces/default/pods")
	if a.code != http.StatusOK || a.header.Get(headerFS) != "" || a.header.Get(headerPL) != "" {
		t.Fatalf("with APF off: %d, headers %v", a.code, a.header)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		list, err := c.Client.FlowcontrolV1().FlowSchemas().List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 13
	})
}
