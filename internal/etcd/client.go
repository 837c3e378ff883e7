package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
)

// Client tuning. The request size limit follows upstream's API server
// (objects are limited to 1.5 MiB by etcd; a little headroom for the
// request around them); responses (lists) may be large.
const (
	dialTimeout        = 5 * time.Second
	keepAliveTime      = 30 * time.Second
	keepAliveTimeout   = 10 * time.Second
	maxCallSendMsgSize = 2 * 1024 * 1024
	maxCallRecvMsgSize = 1<<31 - 1
)

// newClient connects a client to endpoints with cfg's client TLS files. It
// does not wait for the connection: the first request does.
func newClient(cfg Config, endpoints []string, quiet *atomic.Bool) (*clientv3.Client, error) {
	tlsCfg, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		TLS:                  tlsCfg,
		DialTimeout:          dialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		PermitWithoutStream:  true,
		MaxCallSendMsgSize:   maxCallSendMsgSize,
		MaxCallRecvMsgSize:   maxCallRecvMsgSize,
		Logger:               newZapLogger(cfg.Logger.With("component", "etcd-client"), zapcore.WarnLevel, quiet),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	return c, nil
}

// clientTLS builds the client's TLS configuration, or nil when no TLS file
// is given.
func clientTLS(cfg Config) (*tls.Config, error) {
	if cfg.ClientCAFile == "" && cfg.ClientCertFile == "" && cfg.ClientKeyFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd client CA %s: no PEM certificate", cfg.ClientCAFile)
		}
		t.RootCAs = pool
	}
	if (cfg.ClientCertFile == "") != (cfg.ClientKeyFile == "") {
		return nil, errors.New("etcd client: certificate and key must be given together")
	}
	if cfg.ClientCertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		t.GetClientCertificate = reloadingClientCert(cfg.ClientCertFile, cfg.ClientKeyFile, &pair)
	}
	return t, nil
}

// reloadingClientCert presents the pair the files hold at each handshake
// (the client reconnects rarely: a read per handshake costs nothing), so
// that a certificate renewed while the server runs is used from the next
// connection on, as etcd's own TLSInfo does. Should the files not load
// (a pair caught between two writes), it presents the last pair that did.
func reloadingClientCert(certFile, keyFile string, first *tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	var last atomic.Pointer[tls.Certificate]
	last.Store(first)
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
			last.Store(&pair)
		}
		return last.Load(), nil
	}
}
