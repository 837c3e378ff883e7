package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
)

// The channels of the remote command WebSocket protocols, in order.
const (
	channelStdin = iota
	channelStdout
	channelStderr
	channelError
	channelResize
	channelCount
)

// translateStream serves exec or attach to a WebSocket client
// (v5.channel.k8s.io, with its stream-close signal, or v4.channel.k8s.io)
// by speaking SPDY to the kubelet at loc, as upstream's StreamTranslator
// does: stdin, stdout and stderr are copied between the two, terminal
// resizes feed the kubelet's resize stream, and the outcome — Success, or
// Failure with reason NonZeroExitCode and an ExitCode cause — is written
// to the error channel as a v1 Status. Once the WebSocket is accepted,
// errors travel on the error channel, so it returns nil then.
func (s *Server) translateStream(w http.ResponseWriter, r *http.Request, loc *url.URL, opts streamOptions) error {
	if r.ProtoMajor != 1 {
		return apierrors.NewBadRequest("WebSocket upgrades need HTTP/1.1")
	}
	channels := make([]wsstream.ChannelType, channelCount)
	channels[channelStdin] = readChannel(opts.stdin)
	channels[channelStdout] = writeChannel(opts.stdout)
	channels[channelStderr] = writeChannel(opts.stderr)
	channels[channelError] = wsstream.WriteChannel
	channels[channelResize] = wsstream.ReadChannel
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
		remotecommand.StreamProtocolV4Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(4 * time.Hour) // upstream's idle limit for streams
	if _, streams, err := conn.Open(rawWriter(w), r); err == nil {
		defer conn.Close()
		s.runTranslated(r.Context(), streams, loc, opts)
	}
	// Open failed: the WebSocket library has answered the client.
	return nil
}

// runTranslated runs the SPDY side of a translated stream and reports its
// outcome on the error channel.
func (s *Server) runTranslated(ctx context.Context, streams []io.ReadWriteCloser, loc *url.URL, opts streamOptions) {
	ctx, cancel := s.untilShutdown(ctx)
	defer cancel()
	// An empty message on the lowest channel the client reads tells it
	// that the connection is established.
	switch {
	case opts.stdout:
		_, _ = streams[channelStdout].Write(nil)
	case opts.stderr:
		_, _ = streams[channelStderr].Write(nil)
	default:
		_, _ = streams[channelError].Write(nil)
	}
	writeStatus := func(st metav1.Status) {
		data, err := json.Marshal(st)
		if err == nil {
			_, _ = streams[channelError].Write(data)
		}
	}

	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{TLS: s.kubelet.tls.Clone(), PingPeriod: 5 * time.Second})
	if err != nil {
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	executor, err := clientremotecommand.NewSPDYExecutorRejectRedirects(rt, rt, http.MethodPost, loc)
	if err != nil {
		writeStatus(apierrors.NewInternalError(err).Status())
		return
	}
	so := clientremotecommand.StreamOptions{Tty: opts.tty}
	if opts.stdin {
		so.Stdin = streams[channelStdin]
	}
	if opts.stdout {
		so.Stdout = streams[channelStdout]
	}
	if opts.stderr {
		so.Stderr = streams[channelStderr]
	}
	if opts.tty {
		sizes := make(chan clientremotecommand.TerminalSize)
		resizeDone := make(chan struct{})
		go func() {
			defer close(resizeDone)
			readResizes(ctx, streams[channelResize], sizes)
		}()
		defer func() {
			cancel()
			streams[channelResize].Close()
			<-resizeDone
		}()
		so.TerminalSizeQueue = sizeQueue{ctx: ctx, sizes: sizes}
	}

	err = executor.StreamWithContext(ctx, so)
	var statusErr *apierrors.StatusError
	var exitErr exec.ExitError
	switch {
	case err == nil:
		writeStatus(metav1.Status{Status: metav1.StatusSuccess})
	case errors.As(err, &statusErr):
		writeStatus(statusErr.Status())
	case errors.As(err, &exitErr) && exitErr.Exited():
		writeStatus(exitStatus(exitErr))
	default:
		writeStatus(apierrors.NewInternalError(err).Status())
	}
}

// exitStatus is the Status upstream reports for a command that exited
// with a non-zero code.
func exitStatus(e exec.ExitError) metav1.Status {
	return metav1.Status{
		Status:  metav1.StatusFailure,
		Reason:  remotecommand.NonZeroExitCodeReason,
		Message: fmt.Sprintf("command terminated with non-zero exit code: %v", e),
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type:    remotecommand.ExitCodeCauseType,
			Message: strconv.Itoa(e.ExitStatus()),
		}}},
	}
}

// readResizes decodes the JSON terminal sizes the client sends on the
// resize channel and passes them on until the channel or ctx ends; then
// it closes sizes.
func readResizes(ctx context.Context, r io.Reader, sizes chan<- clientremotecommand.TerminalSize) {
	defer close(sizes)
	dec := json.NewDecoder(r)
	for {
		var size clientremotecommand.TerminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		select {
		case sizes <- size:
		case <-ctx.Done():
			return
		}
	}
}

// sizeQueue is the TerminalSizeQueue of a translated stream.
type sizeQueue struct {
	ctx   context.Context
	sizes <-chan clientremotecommand.TerminalSize
}

// Next returns the next size, or nil once the stream has ended.
func (q sizeQueue) Next() *clientremotecommand.TerminalSize {
	select {
	case s, ok := <-q.sizes:
		if !ok {
			return nil
		}
		return &s
	case <-q.ctx.Done():
		return nil
	}
}

func readChannel(on bool) wsstream.ChannelType {
	if on {
		return wsstream.ReadChannel
	}
	return wsstream.IgnoreChannel
}

func writeChannel(on bool) wsstream.ChannelType {
	if on {
		return wsstream.WriteChannel
	}
	return wsstream.IgnoreChannel
}
