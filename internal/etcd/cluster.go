package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Default ports of a clustered member, etcd's own.
const (
	DefaultClientPort = 2379
	DefaultPeerPort   = 2380
)

// Raft timing of a clustered member: etcd's defaults. Peers are other
// machines: a heartbeat every 100 ms, a new election after a second
// without one, so a leader killed is replaced in one to two seconds.
const (
	clusterTickMs     = 100
	clusterElectionMs = 1000
)

// promoteTimeout bounds how long a learner may take to catch up with the
// leader before Start gives up on promoting it.
const promoteTimeout = 5 * time.Minute

// MemberConfig makes the embedded member one of a cluster of servers
// (`skiff server --cluster-init` or `--server`). The zero value is the
// single member on loopback ports of a stand-alone server.
type MemberConfig struct {
	// Name is the member's name, the server's node name: unique in the
	// cluster.
	Name string
	// IP is the address other members reach this one on: the peer and
	// client ports listen there.
	IP string
	// ClientPort and PeerPort default to 2379 and 2380.
	ClientPort, PeerPort int
	// Join names the client URLs of a running cluster this member joins
	// (as a learner, promoted once it has caught up) when its data
	// directory holds no member yet. A member that has data restarts
	// with it and ignores Join.
	Join []string
	// ForceNewCluster restarts the member's data as a cluster of one,
	// dropping every other member (--cluster-reset): how a cluster that
	// lost its quorum is brought back.
	ForceNewCluster bool
}

// Clustered reports whether m asks for a member others can join.
func (m MemberConfig) Clustered() bool { return m.IP != "" }

func (m MemberConfig) clientURL(host string) url.URL {
	port := m.ClientPort
	if port == 0 {
		port = DefaultClientPort
	}
	return url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}
}

func (m MemberConfig) peerURL() url.URL {
	port := m.PeerPort
	if port == 0 {
		port = DefaultPeerPort
	}
	return url.URL{Scheme: "https", Host: net.JoinHostPort(m.IP, strconv.Itoa(port))}
}

// Member is one member of the cluster as the API server's peers see it.
type Member struct {
	ID         uint64   `json:"id,string"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	// Leader is set on the member that leads, as this member knows it.
	Leader bool `json:"leader,omitempty"`
}

// Members lists the cluster's members.
func (e *Etcd) Members(ctx context.Context) ([]Member, error) {
	resp, err := e.client.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd members: %w", err)
	}
	var leader uint64
	if e.member != nil {
		leader = uint64(e.member.Server.Leader())
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner, Leader: m.ID == leader})
	}
	return out, nil
}

// ErrNoSuchMember is returned by RemoveMember for a name no member has.
var ErrNoSuchMember = errors.New("no etcd member of that name")

// RemoveMember removes the member called name from the cluster, retrying
// while etcd finds the cluster unhealthy (just after a member joined)
// until ctx ends. etcd refuses to remove the last voting member.
func (e *Etcd) RemoveMember(ctx context.Context, name string) error {
	return removeMember(ctx, e.client, name)
}

func removeMember(ctx context.Context, c *clientv3.Client, name string) error {
	resp, err := c.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("etcd members: %w", err)
	}
	for _, m := range resp.Members {
		if m.Name != name {
			continue
		}
		// etcd refuses membership changes for a few seconds after a
		// member joined ("unhealthy cluster"); ctx bounds the retries.
		for {
			_, err := c.MemberRemove(ctx, m.ID)
			if err == nil || errors.Is(err, rpctypes.ErrMemberNotFound) {
				return nil
			}
			if !isTransient(err) {
				return fmt.Errorf("remove etcd member %s: %w", name, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("remove etcd member %s: %w", name, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("%w: %s", ErrNoSuchMember, name)
}

// RemoveSelf removes this data dir's member through the other members at
// endpoints (a member cannot leave through itself once removed). For
// `skiff uninstall` of a server that is one of several.
func RemoveSelf(ctx context.Context, cfg Config, endpoints []string, name string) error {
	c, err := newClient(cfg, endpoints, new(atomic.Bool))
	if err != nil {
		return err
	}
	defer c.Close()
	return removeMember(ctx, c, name)
}

// hasMember reports whether dir holds a member's data (a restart, not a
// join).
func hasMember(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

// addLearner adds this member to the cluster at cfg.Member.Join as a
// learner and returns etcd's initial-cluster string naming every member.
// A member left over from an earlier attempt that never started (same
// peer URL, no name yet) is reused; a started member of the same name is
// an error: it must be removed first.
func addLearner(ctx context.Context, cfg Config, quiet *atomic.Bool) (string, error) {
	m := cfg.Member
	c, err := newClient(cfg, m.Join, quiet)
	if err != nil {
		return "", err
	}
	defer c.Close()
	peerURL := m.peerURL()
	peer := peerURL.String()
	list, err := c.MemberList(ctx)
	if err != nil {
		return "", fmt.Errorf("list the members of the etcd cluster at %v: %w", m.Join, err)
	}
	members := list.Members
	added := false
	for _, em := range members {
		switch {
		case slices.Contains(em.PeerURLs, peer) && em.Name == "":
			added = true // an earlier attempt
		case slices.Contains(em.PeerURLs, peer):
			return "", fmt.Errorf("etcd member %s already has peer URL %s: remove it first (kubectl delete node %s)", em.Name, peer, em.Name)
		case em.Name == m.Name:
			return "", fmt.Errorf("an etcd member named %s already exists (peer %v): remove it first (kubectl delete node %s), or choose another --node-name", m.Name, em.PeerURLs, m.Name)
		}
	}
	if !added {
		if members, err = addAsLearner(ctx, c, peer); err != nil {
			return "", fmt.Errorf("add etcd member %s (%s): %w", m.Name, peer, err)
		}
	}
	var parts []string
	for _, em := range members {
		name := em.Name
		if slices.Contains(em.PeerURLs, peer) {
			name = m.Name
		}
		if name == "" {
			// Another member being added at the same time: etcd
			// needs every member named; it is not started, so its
			// name is not known and it cannot be part of the quorum
			// this member needs to start.
			continue
		}
		for _, u := range em.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	return strings.Join(parts, ","), nil
}

// addAsLearner adds the learner, retrying for a while when etcd finds
// the cluster unhealthy: it refuses to change the membership until every
// voter has been connected for a few seconds, as just after another
// member joined.
func addAsLearner(ctx context.Context, c *clientv3.Client, peer string) ([]*etcdserverpb.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		resp, err := c.MemberAddAsLearner(ctx, []string{peer})
		if err == nil {
			return resp.Members, nil
		}
		if !isTransient(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// promote makes the learner id a voting member once it has caught up
// with the leader, asking every second until promoteTimeout.
func promote(ctx context.Context, c *clientv3.Client, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, promoteTimeout)
	defer cancel()
	for {
		_, err := c.MemberPromote(ctx, id)
		if err == nil || errors.Is(err, rpctypes.ErrMemberNotLearner) {
			return nil
		}
		if !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) && !isTransient(err) {
			return fmt.Errorf("promote etcd member %x: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote etcd member %x: not caught up with the leader: %w", id, err)
		case <-time.After(time.Second):
		}
	}
}

// isTransient reports errors a request may meet while the cluster
// changes (a leader election, a member starting).
func isTransient(err error) bool {
	return errors.Is(err, rpctypes.ErrUnhealthy) || errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail)
}
