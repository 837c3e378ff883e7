package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skiff-io/skiff/internal/agent"
	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/bootstraptoken"
	"github.com/skiff-io/skiff/internal/etcd"
	"github.com/skiff-io/skiff/internal/pki"
)

// A cluster of servers (`skiff server --cluster-init`, then `skiff server
// --server URL --token JOIN` on each further machine) shares one embedded
// etcd cluster, one cluster CA, one etcd CA and one service-account key.
// The first server writes the server join string, K10<CA hash>::server:
// <secret>, to <data-dir>/token. A joining server checks the first's CA
// against the hash before it sends the secret, receives the shared keys
// over that verified connection (serverBootstrapPath), checks that the
// flags servers must agree on do, and its etcd member joins as a learner,
// promoted to a voter once caught up (internal/etcd/cluster.go).

// serverBootstrapPath serves the shared keys to a server that presents the
// cluster's server secret.
const serverBootstrapPath = "/v1-skiff/server-bootstrap"

// sharedFiles are the files, relative to the data dir, every server of a
// cluster holds the same: what signs and verifies credentials any server
// may be shown. The leaves each server issues itself.
var sharedFiles = []string{
	"tls/ca.crt", "tls/ca.key", "tls/ca-cross.crt",
	"tls/etcd/ca.crt", "tls/etcd/ca.key",
	"tls/front-proxy-ca.crt", "tls/front-proxy-ca.key",
	"tls/service-account.key",
	"cred/server-token",
	"cred/encryption-config.yaml",
}

// serverBootstrap is what a joining server receives.
type serverBootstrap struct {
	// Files maps a path of sharedFiles to its content (absent files are
	// left out).
	Files map[string][]byte `json:"files"`
	// Flags are the values of agreedFlags on the serving server.
	Flags map[string]string `json:"flags"`
	// EtcdClientURLs are the client URLs of the started etcd members.
	EtcdClientURLs []string `json:"etcdClientURLs"`
}

// agreedFlags are the flags every server of a cluster must give the same
// value: they shape objects any server writes or reads.
func agreedFlags(cfg Config) map[string]string {
	return map[string]string{
		"--service-cidr":            cfg.ServiceCIDR,
		"--cluster-cidr":            cfg.ClusterCIDR,
		"--service-node-port-range": cfg.NodePortRange,
		"--network-backend":         cfg.NetworkBackend,
		"--secrets-encryption":      strconv.FormatBool(cfg.SecretsEncryption),
	}
}

// checkAgreedFlags compares this server's flags with the cluster's and
// names the first that differs.
func checkAgreedFlags(cfg Config, cluster map[string]string) error {
	mine := agreedFlags(cfg)
	names := make([]string, 0, len(mine))
	for n := range mine {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if theirs, ok := cluster[n]; ok && theirs != mine[n] {
			return fmt.Errorf("%s %q differs from the cluster's %q: every server must give it the same value", n, mine[n], theirs)
		}
	}
	return nil
}

func serverTokenFile(dataDir string) string { return filepath.Join(dataDir, "cred", "server-token") }

// JoinFile is where a clustered server writes the server join string.
func JoinFile(dataDir string) string { return filepath.Join(dataDir, "token") }

// clusterState is this server's part in a cluster of servers.
type clusterState struct {
	// member configures the embedded etcd member; its zero value is a
	// stand-alone server.
	member etcd.MemberConfig
	// secret is the server secret (empty for a stand-alone server).
	secret string
}

func (c *clusterState) clustered() bool { return c.member.Clustered() }

// prepareCluster settles this server's part in a cluster before its TLS
// material and etcd start: for a joining server that has not joined yet,
// it fetches the shared files from the server at cfg.Server and writes
// them to the data dir.
func prepareCluster(ctx context.Context, cfg Config, lg *slog.Logger) (*clusterState, error) {
	if cfg.ClusterResetRestorePath != "" && !cfg.ClusterReset {
		return nil, errors.New("--cluster-reset-restore-path goes with --cluster-reset")
	}
	if len(cfg.EtcdServers) > 0 && !cfg.ClusterInit && cfg.Server == "" && !cfg.ClusterReset {
		// Servers sharing an external etcd share their keys through it
		// (sharedkeys.go).
		if cfg.Token != "" && len(cfg.Token) < 16 {
			return nil, errors.New("--token: the secret servers on one external etcd share their keys with needs 16 characters or more")
		}
		return &clusterState{}, nil
	}
	if !cfg.ClusterInit && cfg.Server == "" && !cfg.ClusterReset {
		if cfg.Token != "" {
			return nil, errors.New("--token is for a server joining another (--server); the first server of a cluster takes --cluster-init")
		}
		return &clusterState{}, nil
	}
	if cfg.ClusterInit && cfg.Server != "" {
		return nil, errors.New("--cluster-init starts a new cluster, --server joins one: give one of them")
	}
	if len(cfg.EtcdServers) > 0 {
		return nil, errors.New("--cluster-init and --server make servers share an embedded etcd cluster; with --etcd-servers give neither")
	}
	name, err := nodeName(cfg)
	if err != nil {
		return nil, err
	}
	ip, err := memberIP(cfg)
	if err != nil {
		return nil, err
	}
	st := &clusterState{member: etcd.MemberConfig{Name: name, IP: ip, ForceNewCluster: cfg.ClusterReset}}
	etcdDir := filepath.Join(cfg.DataDir, "etcd")
	if cfg.ClusterReset && cfg.ClusterResetRestorePath == "" && !hasEtcdMember(etcdDir) {
		return nil, fmt.Errorf("--cluster-reset: %s holds no etcd member to reset; give --cluster-reset-restore-path to restore a snapshot", etcdDir)
	}
	if cfg.ClusterResetRestorePath != "" {
		// A one-member cluster of this server, from the snapshot; the
		// data it replaces is kept beside it (<etcd>.old-<time>).
		peer := (&url.URL{Scheme: "https", Host: net.JoinHostPort(ip, strconv.Itoa(etcd.DefaultPeerPort))}).String()
		if err := etcd.Restore(cfg.ClusterResetRestorePath, etcdDir, name, peer); err != nil {
			return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
		}
		lg.Info("restored etcd from a snapshot", "snapshot", cfg.ClusterResetRestorePath)
	}
	if cfg.Server != "" && !cfg.ClusterReset && !hasEtcdMember(etcdDir) {
		if cfg.Token == "" {
			return nil, errors.New("--server needs --token: the server join string in the first server's <data-dir>/token")
		}
		boot, err := fetchServerBootstrap(ctx, cfg.Server, cfg.Token)
		if err != nil {
			return nil, err
		}
		if err := checkAgreedFlags(cfg, boot.Flags); err != nil {
			return nil, err
		}
		for _, f := range sharedFiles {
			data, ok := boot.Files[f]
			if !ok {
				continue
			}
			if err := pki.WriteSecretFile(filepath.Join(cfg.DataDir, f), data); err != nil {
				return nil, err
			}
		}
		st.member.Join = boot.EtcdClientURLs
		lg.Info("received the cluster's keys, joining its etcd", "server", cfg.Server, "members", boot.EtcdClientURLs)
	}
	if st.secret, err = ensureServerSecret(cfg); err != nil {
		return nil, err
	}
	return st, nil
}

func hasEtcdMember(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member"))
	return err == nil
}

// nodeName is the server's node name, which also names its etcd member.
func nodeName(cfg Config) (string, error) {
	if cfg.NodeName != "" {
		return cfg.NodeName, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("node name (set --node-name): %w", err)
	}
	return strings.ToLower(h), nil
}

// memberIP is the address the server's etcd member serves its peers on:
// --node-ip, else a specific --bind-address, else the address this machine
// reaches the server it joins from, else loopback (a cluster on one
// machine).
func memberIP(cfg Config) (string, error) {
	for _, a := range []string{cfg.NodeIP, cfg.BindAddress} {
		if ip := net.ParseIP(a); ip != nil && !ip.IsUnspecified() {
			return ip.String(), nil
		}
	}
	if cfg.Server != "" {
		u, err := url.Parse(cfg.Server)
		if err != nil || u.Hostname() == "" {
			return "", fmt.Errorf("--server %q is not a URL", cfg.Server)
		}
		ip, err := agent.LocalAddressTowards(u.Hostname())
		if err != nil {
			return "", fmt.Errorf("the address to reach %s from (set --node-ip): %w", cfg.Server, err)
		}
		return ip, nil
	}
	return "127.0.0.1", nil
}

// ensureServerSecret returns the cluster's server secret: the one kept in
// the data dir, else (first start of a --cluster-init server) --token's or
// a new random one, which it keeps.
func ensureServerSecret(cfg Config) (string, error) {
	path := serverTokenFile(cfg.DataDir)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("server secret: %w", err)
	}
	secret := cfg.Token
	if _, s, err := bootstraptoken.ParseServerJoin(secret); err == nil {
		secret = s
	}
	if secret == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		secret = hex.EncodeToString(b)
	}
	if len(secret) < 16 {
		return "", errors.New("--token: a server secret needs 16 characters or more")
	}
	return secret, pki.WriteSecretFile(path, []byte(secret+"\n"))
}

// writeJoinString writes the server join string, for the CA in force, to
// <data-dir>/token (root only).
func (c *clusterState) writeJoinString(dataDir string, bundle *pki.Bundle) error {
	ca, _, err := bundle.SigningCA()
	if err != nil {
		return err
	}
	join := bootstraptoken.ServerJoin(bootstraptoken.CAHash(ca), c.secret)
	return pki.WriteSecretFile(JoinFile(dataDir), []byte(join+"\n"))
}

// fetchServerBootstrap verifies the server at serverURL against the CA
// hash of join, then presents the secret and returns what it sends.
func fetchServerBootstrap(ctx context.Context, serverURL, join string) (*serverBootstrap, error) {
	caHash, secret, err := bootstraptoken.ParseServerJoin(join)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	caPEM, err := agent.VerifiedCA(ctx, serverURL, caHash)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", serverURL, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(serverURL, "/")+serverBootstrapPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", serverURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", serverURL, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("join %s: the server refused the secret of --token (not this cluster's server token)", serverURL)
	case http.StatusNotFound:
		return nil, fmt.Errorf("join %s: that server is not one of a cluster of servers (start the first with --cluster-init)", serverURL)
	default:
		return nil, fmt.Errorf("join %s: %s: %s", serverURL, resp.Status, strings.TrimSpace(string(body)))
	}
	var boot serverBootstrap
	if err := json.Unmarshal(body, &boot); err != nil {
		return nil, fmt.Errorf("join %s: the server's answer: %w", serverURL, err)
	}
	if len(boot.EtcdClientURLs) == 0 || len(boot.Files["tls/ca.key"]) == 0 || len(boot.Files["tls/etcd/ca.key"]) == 0 {
		return nil, fmt.Errorf("join %s: the server's answer lacks the CA keys or etcd members", serverURL)
	}
	return &boot, nil
}

// etcdMembersPath lists the etcd members (GET); a member's name after it
// removes that member (DELETE). For system:masters.
const etcdMembersPath = "/v1-skiff/etcd/members"

// handler serves serverBootstrapPath to servers that present the secret
// and etcdMembersPath to cluster admins, and hands every other request to
// next. A stand-alone server serves the bootstrap to no one (404).
func (c *clusterState) handler(next http.Handler, cfg Config, db *etcd.Etcd, authn apiserver.Authenticator, lg *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == etcdMembersPath || strings.HasPrefix(req.URL.Path, etcdMembersPath+"/") {
			if mastersOnly(authn, w, req, "manage the etcd cluster's members") {
				serveMembers(w, req, db, lg)
			}
			return
		}
		if req.URL.Path != serverBootstrapPath {
			next.ServeHTTP(w, req)
			return
		}
		if !c.clustered() {
			http.NotFound(w, req)
			return
		}
		if req.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		got, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.secret)) != 1 {
			lg.Warn("server join refused: wrong secret", "remote", req.RemoteAddr)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		boot, err := c.bootstrap(req.Context(), cfg, db)
		if err != nil {
			lg.Error("server join failed", "remote", req.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		lg.Info("sent the cluster's keys to a joining server", "remote", req.RemoteAddr)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(boot)
	})
}

func (c *clusterState) bootstrap(ctx context.Context, cfg Config, db *etcd.Etcd) (*serverBootstrap, error) {
	boot := &serverBootstrap{Files: map[string][]byte{}, Flags: agreedFlags(cfg)}
	for _, f := range sharedFiles {
		data, err := os.ReadFile(filepath.Join(cfg.DataDir, f))
		switch {
		case err == nil:
			boot.Files[f] = data
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	members, err := db.Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.Name != "" && !m.IsLearner {
			boot.EtcdClientURLs = append(boot.EtcdClientURLs, m.ClientURLs...)
		}
	}
	return boot, nil
}

// serveMembers lists the members or removes one.
func serveMembers(w http.ResponseWriter, req *http.Request, db *etcd.Etcd, lg *slog.Logger) {
	if !db.Embedded() {
		http.Error(w, "this server uses an external etcd (--etcd-servers): manage its members with etcdctl", http.StatusNotFound)
		return
	}
	name := strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, etcdMembersPath), "/")
	switch {
	case name == "" && req.Method == http.MethodGet:
		members, err := db.Members(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(members)
	case name != "" && req.Method == http.MethodDelete:
		err := db.RemoveMember(req.Context(), name)
		switch {
		case errors.Is(err, etcd.ErrNoSuchMember):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusConflict)
		default:
			lg.Info("removed etcd member", "name", name)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}\n"))
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// EtcdMemberConfig is `skiff etcd-member`'s configuration.
type EtcdMemberConfig struct {
	// DataDir is a server's data dir; its admin.kubeconfig is used unless
	// Kubeconfig names another (of a system:masters user).
	DataDir, Kubeconfig string
}

// EtcdMemberList prints the members of the cluster's etcd.
func EtcdMemberList(ctx context.Context, cfg EtcdMemberConfig, w io.Writer) error {
	var members []etcd.Member
	if err := callSkiffEndpoint(ctx, cfg.DataDir, cfg.Kubeconfig, http.MethodGet, etcdMembersPath, &members); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tROLE\tPEER URLS\tCLIENT URLS")
	for _, m := range members {
		role := "voter"
		switch {
		case m.IsLearner:
			role = "learner"
		case m.Leader:
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%x\t%s\t%s\t%s\n", m.Name, m.ID, role, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","))
	}
	return tw.Flush()
}

// EtcdMemberRemove removes the member called name: a server gone for good.
func EtcdMemberRemove(ctx context.Context, cfg EtcdMemberConfig, name string, w io.Writer) error {
	var out struct{}
	if err := callSkiffEndpoint(ctx, cfg.DataDir, cfg.Kubeconfig, http.MethodDelete, etcdMembersPath+"/"+url.PathEscape(name), &out); err != nil {
		return err
	}
	fmt.Fprintf(w, "etcd member %s removed\n", name)
	return nil
}
