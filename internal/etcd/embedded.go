package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap/zapcore"
)

// Embedded member tuning.
const (
	memberName = "skiff"
	// quotaBackendBytes caps the bbolt file; past it etcd raises NOSPACE
	// and refuses writes until compaction and defragmentation.
	quotaBackendBytes = 2 << 30
	// startAttempts: ports are chosen free and then handed to etcd, which
	// binds them itself; another process may take one in between.
	startAttempts = 3
	// Raft timing of the single member; see startMember.
	tickMs     = 10
	electionMs = 100
	// snapshotCount is how many applied entries trigger a raft snapshot
	// (etcd's default: 10,000). It bounds the WAL entries a restart
	// replays, and so how long the member's first proposal, which
	// announces it and which ReadyNotify waits for, is refused as "too
	// many requests": until the replayed entries are applied to within
	// 5,000 of the committed index (see demotedWithError). A snapshot
	// costs little in etcd 3.6 (the v2 store, a backend commit, a WAL
	// record).
	snapshotCount = 2500
	// maxWALFiles is how many WAL files etcd keeps. It only ever deletes
	// files older than the last snapshot, which a restart does not need,
	// but reads every file it kept at start (to find the newest valid
	// snapshot): etcd's 5 are 320 MB read, and 0.9 s at 250,000 objects.
	maxWALFiles = 1
	// warningApplyDuration: see startMember.
	warningApplyDuration = 300 * time.Millisecond
)

func startEmbedded(ctx context.Context, cfg Config) (*Etcd, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded etcd: no data directory")
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.TrustedCAFile == "" {
		return nil, errors.New("embedded etcd: server certificate, key and trusted CA are required (mutual TLS)")
	}
	if cfg.ClientCertFile == "" || cfg.ClientKeyFile == "" {
		return nil, errors.New("embedded etcd: a client certificate and key are required (mutual TLS)")
	}
	if cfg.ClientCAFile == "" {
		cfg.ClientCAFile = cfg.TrustedCAFile
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}

	var (
		member *embed.Etcd
		err    error
		quiet  = new(atomic.Bool)
	)
	joining := cfg.Member.Clustered() && len(cfg.Member.Join) > 0 && !hasMember(cfg.DataDir)
	initialCluster := ""
	if joining {
		if initialCluster, err = addLearner(ctx, cfg, quiet); err != nil {
			return nil, fmt.Errorf("embedded etcd: join %v: %w", cfg.Member.Join, err)
		}
	}
	if cfg.Member.Clustered() {
		// Fixed ports: the other members know this one by them.
		member, err = startMember(cfg, initialCluster, quiet)
	} else {
		for attempt := 1; ; attempt++ {
			member, err = startMember(cfg, "", quiet)
			if err == nil || attempt == startAttempts || !errors.Is(err, syscall.EADDRINUSE) {
				break
			}
			cfg.Logger.Warn("embedded etcd port taken, retrying", "attempt", attempt, "err", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("embedded etcd in %s: %w", cfg.DataDir, err)
	}

	e := &Etcd{member: member, quiet: quiet, endpoints: []string{member.Config().AdvertiseClientUrls[0].String()}}
	select {
	case <-member.Server.ReadyNotify():
	case err := <-member.Err():
		_ = e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: %w", cfg.DataDir, err)
	case <-ctx.Done():
		_ = e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: not ready: %w", cfg.DataDir, ctx.Err())
	}
	// The API server talks to its own member in process, without gRPC,
	// HTTP/2 and TLS in between: every write and watch event costs less
	// than half the CPU it did over the loopback connection. The member
	// still listens (mutual TLS) for etcdctl and backups.
	e.client = v3client.New(member.Server)
	if err := writeClientURL(cfg.DataDir, e.endpoints[0]); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	if joining {
		id := uint64(member.Server.MemberID())
		cfg.Logger.Info("etcd member joined as a learner, waiting to promote it", "name", cfg.Member.Name, "id", fmt.Sprintf("%x", id))
		if err := promote(ctx, e.client, id); err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
	}
	if cfg.Member.Clustered() {
		if err := e.advertise(ctx, cfg.Member); err != nil {
			_ = e.Close()
			return nil, err
		}
	}
	return e, nil
}

// advertise makes the member's stored peer URL the one it listens on:
// a stand-alone server's member, on a loopback port, becomes reachable
// when the server restarts with --cluster-init, and a member whose
// address changed is found at the new one.
func (e *Etcd) advertise(ctx context.Context, m MemberConfig) error {
	id := uint64(e.member.Server.MemberID())
	peerURL := m.peerURL()
	peer := peerURL.String()
	for _, em := range e.member.Server.Cluster().Members() {
		if uint64(em.ID) != id || slices.Equal(em.PeerURLs, []string{peer}) {
			continue
		}
		if _, err := e.client.MemberUpdate(ctx, id, []string{peer}); err != nil {
			return fmt.Errorf("embedded etcd: advertise peer URL %s: %w", peer, err)
		}
	}
	return nil
}

// startMember starts a single-member cluster on fresh loopback ports. The
// ports need not survive a restart: the API server is the only client and
// there are no peers, and etcd does not check a restarted member's peer URL
// against the one it stored.
//
// A clustered member (cfg.Member) listens on its fixed ports on its
// address instead. A joining one starts with initialCluster, the cluster
// it was added to.
func startMember(cfg Config, initialCluster string, quiet *atomic.Bool) (*embed.Etcd, error) {
	ec := embed.NewConfig()
	ec.Name = memberName
	ec.Dir = cfg.DataDir
	if m := cfg.Member; m.Clustered() {
		ec.Name = m.Name
		clientURL, peerURL := m.clientURL(m.IP), m.peerURL()
		ec.ListenClientUrls = []url.URL{clientURL}
		ec.AdvertiseClientUrls = []url.URL{clientURL}
		ec.ListenPeerUrls = []url.URL{peerURL}
		ec.AdvertisePeerUrls = []url.URL{peerURL}
		ec.InitialCluster = ec.InitialClusterFromName(m.Name)
		if initialCluster != "" {
			ec.InitialCluster = initialCluster
			ec.ClusterState = embed.ClusterStateFlagExisting
		}
		ec.ForceNewCluster = m.ForceNewCluster
	} else {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		clientURL := url.URL{Scheme: "https", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
		peerURL := url.URL{Scheme: "https", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}
		ec.ListenClientUrls = []url.URL{clientURL}
		ec.AdvertiseClientUrls = []url.URL{clientURL}
		ec.ListenPeerUrls = []url.URL{peerURL}
		ec.AdvertisePeerUrls = []url.URL{peerURL}
		ec.InitialCluster = ec.InitialClusterFromName(memberName)
	}
	ec.InitialClusterToken = "skiff"

	tlsInfo := transport.TLSInfo{
		CertFile:       cfg.CertFile,
		KeyFile:        cfg.KeyFile,
		TrustedCAFile:  cfg.TrustedCAFile,
		ClientCertAuth: true,
	}
	ec.ClientTLSInfo = tlsInfo
	// The peer port has no peers to talk to, but it answers /members and
	// raft messages to anyone who connects: keep it behind mTLS too.
	ec.PeerTLSInfo = tlsInfo

	// A single member elects itself after the election timeout less the
	// ticks etcd fast-forwards on start, a random 1 to ElectionMs/TickMs
	// ticks: with etcd's defaults (100/1000 ms) up to a second of every
	// start. No peer can miss heartbeats here, so short ticks cost only
	// a few idle wake-ups a second.
	ec.TickMs = tickMs
	ec.ElectionMs = electionMs
	if cfg.Member.Clustered() {
		ec.TickMs, ec.ElectionMs = clusterTickMs, clusterElectionMs
	}

	ec.QuotaBackendBytes = quotaBackendBytes
	ec.SnapshotCount = snapshotCount
	ec.MaxWalFiles = maxWALFiles
	// The API server compacts (every 5 minutes, like upstream's); etcd's
	// own compactor stays off ("0" hours of retention).
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "0"
	ec.EnableGRPCGateway = false
	// embed.NewConfig leaves this at zero, which logs every request as
	// slow; 300 ms is etcd's command-line default.
	ec.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	// etcd warns of any request it takes longer than this to apply, reads
	// included (100 ms by default). A watch cache fills in pages of
	// 10,000 objects, and at 1 KiB each a page takes 100 to 250 ms: a
	// dozen warnings every start at 250,000 objects. 300 ms is the
	// threshold of the slow-request warning above.
	ec.WarningApplyDuration = warningApplyDuration
	// fsync stays on (UnsafeNoFsync false): acknowledged writes survive a
	// crash.
	ec.UnsafeNoFsync = false

	ec.LogLevel = "warn"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(cfg.Logger.With("component", "etcd"), zapcore.WarnLevel, quiet))

	return embed.StartEtcd(ec)
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
