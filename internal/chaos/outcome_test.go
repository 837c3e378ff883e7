package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	refusedConn := &url.Error{Op: "Post", URL: "https://127.0.0.1:1", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{nil, applied},
		{apierrors.NewConflict(gr, "x", errors.New("stale")), refused},
		{apierrors.NewNotFound(gr, "x"), refused},
		{apierrors.NewAlreadyExists(gr, "x"), refused},
		{apierrors.NewTooManyRequests("busy", 1), refused},
		{refusedConn, refused},                              // no server took the connection
		{apierrors.NewInternalError(io.EOF), indeterminate}, // 500: may have been written
		{apierrors.NewTimeoutError("slow", 1), indeterminate},
		{apierrors.NewServiceUnavailable("starting"), indeterminate},
		{&url.Error{Op: "Put", URL: "https://127.0.0.1:1", Err: io.ErrUnexpectedEOF}, indeterminate}, // the kill
		{fmt.Errorf("http2: client connection lost"), indeterminate},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
