package image

import (
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
)

// PauseRef is the name of skiff's pause image, the process that holds a
// pod sandbox's namespaces. containerd's sandbox_image must name it exactly
// (else RunPodSandbox tries to pull it). It is never :latest, so no pull
// policy ever asks a registry for it.
const PauseRef = "skiff.io/pause:3.10"

// pauseLoadAddr is the virtual address the pause executable is mapped at.
const pauseLoadAddr = 0x400000

// ELF sizes of a 64-bit file header and of one program header.
const (
	elfHeaderSize  = 64
	progHeaderSize = 56
)

// PauseBinary returns skiff's pause program: a static x86-64 Linux ELF
// executable of about 200 bytes, generated here so that skiff needs no
// build step and no download for its sandbox image.
//
// The program, written in machine code:
//
//	rt_sigaction(SIGCHLD, {SIG_IGN})          ; children are reaped by the kernel
//	rt_sigaction(SIGTERM, {exit})             ; SIGTERM and SIGINT exit 0
//	rt_sigaction(SIGINT,  {exit})
//	loop: pause(); jmp loop
//	exit: exit_group(0)
//
// Ignoring SIGCHLD makes the kernel reap exited children at once, which is
// what a pause process is for when the pod shares one PID namespace.
// containerd 1.6 stops a sandbox with SIGKILL (sandbox_stop.go,
// stopSandboxContainer), which needs no handler; the SIGTERM/SIGINT
// handlers are for a pause run by hand or by another runtime. Upstream's
// pause (C) does the same three things.
//
// It returns an error on any GOARCH but amd64.
func PauseBinary() ([]byte, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("pause image: only amd64 is supported, not %s", runtime.GOARCH)
	}
	code := pauseCode(pauseLoadAddr + elfHeaderSize + progHeaderSize)
	size := uint64(elfHeaderSize + progHeaderSize + len(code))

	le := binary.LittleEndian
	elf := make([]byte, 0, size)
	// ELF header.
	elf = append(elf, 0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* System V ABI */)
	elf = append(elf, make([]byte, 8)...)                                  // ABI version, padding
	elf = le.AppendUint16(elf, 2)                                          // e_type: ET_EXEC
	elf = le.AppendUint16(elf, 0x3e)                                       // e_machine: x86-64
	elf = le.AppendUint32(elf, 1)                                          // e_version
	elf = le.AppendUint64(elf, pauseLoadAddr+elfHeaderSize+progHeaderSize) // e_entry
	elf = le.AppendUint64(elf, elfHeaderSize)                              // e_phoff
	elf = le.AppendUint64(elf, 0)                                          // e_shoff: no sections
	elf = le.AppendUint32(elf, 0)                                          // e_flags
	elf = le.AppendUint16(elf, elfHeaderSize)                              // e_ehsize
	elf = le.AppendUint16(elf, progHeaderSize)                             // e_phentsize
	elf = le.AppendUint16(elf, 1)                                          // e_phnum
	elf = le.AppendUint16(elf, 0)                                          // e_shentsize
	elf = le.AppendUint16(elf, 0)                                          // e_shnum
	elf = le.AppendUint16(elf, 0)                                          // e_shstrndx
	// One PT_LOAD segment: the whole file, readable and executable.
	elf = le.AppendUint32(elf, 1)             // p_type: PT_LOAD
	elf = le.AppendUint32(elf, 5)             // p_flags: R+X
	elf = le.AppendUint64(elf, 0)             // p_offset
	elf = le.AppendUint64(elf, pauseLoadAddr) // p_vaddr
	elf = le.AppendUint64(elf, pauseLoadAddr) // p_paddr
	elf = le.AppendUint64(elf, size)          // p_filesz
	elf = le.AppendUint64(elf, size)          // p_memsz
	elf = le.AppendUint64(elf, 0x1000)        // p_align
	return append(elf, code...), nil
}

// pauseCode returns the machine code of the pause program, to be loaded
// at address base.
func pauseCode(base uint32) []byte {
	const (
		sysRtSigaction = 13
		sysPause       = 34
		sysExitGroup   = 231
		sigINT         = 2
		sigTERM        = 15
		sigCHLD        = 17
		sigIGN         = 1
		saRestorer     = 0x04000000 // x86-64 delivers a handled signal only with a restorer
	)
	le := binary.LittleEndian
	var c []byte
	imm32 := func(op []byte, v uint32) { c = le.AppendUint32(append(c, op...), v) }
	// struct kernel_sigaction {handler, flags, restorer, mask} on the stack.
	c = append(c, 0x6a, 0x00) // push 0 (mask)
	c = append(c, 0x6a, 0x00) // push 0 (restorer)
	c = append(c, 0x6a, 0x00) // push 0 (flags)
	c = append(c, 0x6a, sigIGN)
	c = append(c, 0x48, 0x89, 0xe6)     // mov rsi, rsp
	c = append(c, 0x31, 0xd2)           // xor edx, edx (no old action)
	imm32([]byte{0x41, 0xba}, 8)        // mov r10d, 8 (sizeof sigset)
	imm32([]byte{0xbf}, sigCHLD)        // mov edi, SIGCHLD
	imm32([]byte{0xb8}, sysRtSigaction) // mov eax, rt_sigaction
	c = append(c, 0x0f, 0x05)           // syscall
	// Offsets of the immediates that receive the address of exit.
	exitPatch := []int{len(c) + 4}
	imm32([]byte{0x48, 0xc7, 0x04, 0x24}, 0)                // mov qword [rsp], exit
	imm32([]byte{0x48, 0xc7, 0x44, 0x24, 0x08}, saRestorer) // mov qword [rsp+8], SA_RESTORER
	exitPatch = append(exitPatch, len(c)+5)
	imm32([]byte{0x48, 0xc7, 0x44, 0x24, 0x10}, 0) // mov qword [rsp+16], exit
	imm32([]byte{0xbf}, sigTERM)                   // mov edi, SIGTERM
	imm32([]byte{0xb8}, sysRtSigaction)            // mov eax, rt_sigaction
	c = append(c, 0x0f, 0x05)                      // syscall
	imm32([]byte{0xbf}, sigINT)                    // mov edi, SIGINT
	imm32([]byte{0xb8}, sysRtSigaction)            // mov eax, rt_sigaction
	c = append(c, 0x0f, 0x05)                      // syscall
	imm32([]byte{0xb8}, sysPause)                  // loop: mov eax, pause
	c = append(c, 0x0f, 0x05)                      // syscall
	c = append(c, 0xeb, 0xf7)                      // jmp loop (-9)
	exit := base + uint32(len(c))
	c = append(c, 0x31, 0xff)         // exit: xor edi, edi
	imm32([]byte{0xb8}, sysExitGroup) // mov eax, exit_group
	c = append(c, 0x0f, 0x05)         // syscall
	for _, at := range exitPatch {
		le.PutUint32(c[at:], exit)
	}
	return c
}

// WritePause writes the pause image (PauseRef) as an OCI-layout tarball:
// the program at /pause, which is also the entrypoint.
func WritePause(w io.Writer) error {
	bin, err := PauseBinary()
	if err != nil {
		return err
	}
	return WriteOCI(w, PauseRef, ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		[]File{{Path: "/pause", Mode: 0o755, Data: bin}})
}
