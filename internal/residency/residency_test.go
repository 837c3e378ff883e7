package residency

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestReadOnlyRegions(t *testing.T) {
	maps := []byte(`00400000-02c5e000 r-xp 00000000 fd:01 1312 /usr/local/bin/skiff
02c5e000-05e2d000 r--p 0285e000 fd:01 1312 /usr/local/bin/skiff
05e2d000-05ead000 rw-p 05a2d000 fd:01 1312 /usr/local/bin/skiff
05ead000-05f1a000 rw-p 00000000 00:00 0
c000000000-c004000000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fd:01 1313 /usr/lib/other.so
7f0000001000-7f0000002000 r--p 00000000 fd:02 1312 /other/device/same/inode
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`)
	got, err := readOnlyRegions(maps, 0xfd, 0x01, 1312)
	if err != nil {
		t.Fatal(err)
	}
	want := []region{{0x400000, 0x2c5e000}, {0x2c5e000, 0x5e2d000}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(region{})); diff != "" {
		t.Errorf("regions (-want +got):\n%s", diff)
	}
	if _, err := readOnlyRegions([]byte("zz r--p 0 fd:01 1312 /x\n"), 0xfd, 0x01, 1312); err == nil {
		t.Error("a line without an address range was accepted")
	}
}

// TestReleaseShrinksFileBackedMemory releases this test binary's pages
// and checks that its file-backed resident memory shrank and that the
// process still runs code afterwards.
func TestReleaseShrinksFileBackedMemory(t *testing.T) {
	var exe unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &exe); err != nil {
		t.Skipf("no /proc/self/exe: %v", err)
	}
	if unix.Access("/proc/self/exe", unix.W_OK) != nil && int(exe.Uid) != os.Geteuid() {
		t.Skip("the kernel pages out only the file pages of an executable the process may write; this one it may not")
	}
	before, after, err := Release()
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	t.Logf("RssFile %d -> %d KiB, RssAnon %d -> %d KiB", before.File>>10, after.File>>10, before.Anon>>10, after.Anon>>10)
	if before.File == 0 || after.File > before.File/2 {
		t.Errorf("RssFile %d KiB before, %d KiB after: expected at least half released", before.File>>10, after.File>>10)
	}
	if _, err := ReadUsage(); err != nil {
		t.Errorf("after the release: %v", err)
	}
}
