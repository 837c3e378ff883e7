package containerd

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Paths of the files and directories under Config.Dir. Nothing of this
// containerd lives outside Dir except what containerd 1.6 hard-codes:
// shim sockets in /run/containerd/s/ and the CNI result cache in
// /var/lib/cni/results.
const (
	configFile   = "config.toml"
	socketFile   = "containerd.sock"
	logFile      = "containerd.log"
	pidFile      = "containerd.pid"
	rootDir      = "root"
	stateDir     = "state"
	optDir       = "opt"
	runcRootDir  = "runc"
	certsDir     = "certs.d"
	cniConfDir   = "net.d"
	cniIPAMDir   = "cni-ipam"
	conflistFile = "10-skiff.conflist"
)

// cniBinDir is where Debian's containernetworking-plugins installs the
// CNI plugins.
const cniBinDir = "/usr/lib/cni"

// runcBinary is the OCI runtime the runc shim runs.
const runcBinary = "/usr/sbin/runc"

// maxSocketPath bounds the socket path: a unix socket address holds at
// most 107 bytes, and containerd derives longer names (ttrpc, debug)
// from it.
const maxSocketPath = 100

// renderConfig returns containerd's config.toml (schema version 2) for a
// containerd whose whole state lives under dir and whose CRI plugin runs
// pod sandboxes from sandboxImage.
//
// The choices, each needed on skiff's target machines (see
// docs and the CRI recipe): restrict_oom_score_adj because root may lack
// CAP_SYS_RESOURCE (runc then fails to lower oom_score_adj to -998);
// netns_mounts_under_state_dir so pod network namespaces live under dir;
// a streaming server on 127.0.0.1 with a kernel-chosen port; cgroupfs
// (SystemdCgroup=false) because skiff's nodes need no systemd; a per-dir
// runc root so two skiff nodes on one host never see each other's
// containers; certs.d under dir for registry mirrors.
func renderConfig(dir, sandboxImage string) string {
	p := func(name string) string { return strconv.Quote(filepath.Join(dir, name)) }
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by skiff; rewritten on every start.
version = 2
root = %s
state = %s

[grpc]
  address = %s

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %s
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %s
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = %s
          Root = %s
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = %s
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %s
      conf_dir = %s
      max_conf_num = 1
`, p(rootDir), p(stateDir), p(socketFile), p(optDir), strconv.Quote(sandboxImage),
		strconv.Quote(runcBinary), p(runcRootDir), p(certsDir), strconv.Quote(cniBinDir), p(cniConfDir))
	return b.String()
}
