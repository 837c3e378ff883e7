package main

import (
	"context"
	"fmt"
	"log/slog"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The paths the webhook server serves. The e2e test names them in its
// MutatingWebhookConfiguration, its ValidatingWebhookConfiguration and the
// conversion stanza of testdata/crwatch-widget-crd-v2.yaml.
const (
	mutatePath   = "/mutate-widget"
	validatePath = "/validate-widget"
	slowPath     = "/slow"
	convertPath  = "/convert"
)

// serveWebhooks runs the --webhooks mode: controller-runtime's webhook
// server, without a manager. A manager would want a rest.Config and a
// client (and so a service account token and RBAC in the pod) that no
// webhook here uses. It blocks until ctx ends and the server has shut down;
// in-flight requests get up to a minute (controller-runtime's shutdown
// timeout), and /slow stops sleeping as soon as ctx ends.
func serveWebhooks(ctx context.Context, cfg config, log *slog.Logger) error {
	// controller-runtime turns a Port of 0 into 9443 and a negative one
	// into "disabled", where Start returns at once; neither is what the
	// flag asked for.
	if cfg.webhookPort <= 0 || cfg.webhookPort > 65535 {
		return fmt.Errorf("--webhook-port=%d: want 1-65535", cfg.webhookPort)
	}
	srv := newWebhookServer(cfg, log)
	log.Info("starting webhook server", "port", cfg.webhookPort, "certDir", cfg.certDir)
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("webhook server on port %d with certificates in %s: %w", cfg.webhookPort, cfg.certDir, err)
	}
	return nil
}

// newWebhookServer returns the webhook server with every webhook
// registered; it reads the certificate only when started.
func newWebhookServer(cfg config, log *slog.Logger) webhook.Server {
	srv := webhook.NewServer(webhook.Options{
		Port:    cfg.webhookPort,
		CertDir: cfg.certDir, // CertName and KeyName default to tls.crt and tls.key
	})
	a := &admissionHooks{log: log}
	srv.Register(mutatePath, &webhook.Admission{Handler: admission.HandlerFunc(a.mutate)})
	srv.Register(validatePath, &webhook.Admission{Handler: admission.HandlerFunc(a.validate)})
	srv.Register(slowPath, &webhook.Admission{Handler: admission.HandlerFunc(a.slow)})
	srv.Register(convertPath, &converter{log: log})
	return srv
}
