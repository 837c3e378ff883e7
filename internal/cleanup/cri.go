package cleanup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dialCRI connects to the CRI socket and returns a client once the
// runtime answers Version, or an error when nothing answers within
// timeout.
func dialCRI(ctx context.Context, socket string, timeout time.Duration) (runtimeapi.RuntimeServiceClient, func(), error) {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(socket)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("CRI: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("localhost"))
	if err != nil {
		return nil, nil, err
	}
	client := runtimeapi.NewRuntimeServiceClient(conn)
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = client.Version(callCtx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return client, func() { _ = conn.Close() }, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = conn.Close()
			return nil, nil, fmt.Errorf("CRI at %s: %w", socket, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopPods stops every running container (SIGTERM, then SIGKILL after
// grace, all at once) and then every ready pod sandbox, which tears down
// its network (CNI DEL: the veth, the IP lease) and its shm and netns
// mounts. Containers and sandboxes stay in containerd, stopped: a later
// kubelet removes or restarts them, as after a reboot.
func stopPods(ctx context.Context, rs runtimeapi.RuntimeServiceClient, grace time.Duration, report func(string, ...any)) error {
	ctrs, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, c := range ctrs.Containers {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		wg.Go(func() {
			callCtx, cancel := context.WithTimeout(ctx, grace+30*time.Second)
			defer cancel()
			_, err := rs.StopContainer(callCtx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: int64(grace / time.Second)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("stop container %s: %w", c.Id, err))
				return
			}
			report("stopped container %s (%s, pod sandbox %s)", short(c.Id), containerName(c), short(c.PodSandboxId))
		})
	}
	wg.Wait()
	sbs, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list pod sandboxes: %w", err))...)
	}
	for _, s := range sbs.Items {
		if s.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		wg.Go(func() {
			callCtx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := rs.StopPodSandbox(callCtx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("stop pod sandbox %s: %w", s.Id, err))
				return
			}
			name := s.Id
			if m := s.Metadata; m != nil {
				name = m.Namespace + "/" + m.Name
			}
			report("stopped pod sandbox %s (%s)", short(s.Id), name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func containerName(c *runtimeapi.Container) string {
	if c.Metadata != nil {
		return c.Metadata.Name
	}
	return "?"
}

// short is a container id as `crictl ps` shows it.
func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

// startContainerd runs containerd with config in its own process group,
// appending its output to logPath, and returns a function that stops it
// (SIGTERM, SIGKILL after 10s) and waits for it.
func startContainerd(config, logPath string) (int, func(), error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command("containerd", "--config", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return 0, nil, fmt.Errorf("start containerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return cmd.Process.Pid, stop, nil
}
