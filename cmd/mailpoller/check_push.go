package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/graph"
	"github.com/mailpoller/mailpoller/internal/redact"
)

// checkNotifications sends graph.notifications_url the validation request
// Graph sends when a subscription is made. A running mailpoller answers it
// on http.listen; when the port is free, check answers there itself for
// the time of the probe, so the route through the proxy is tested before
// the first start too. It is done from this machine: Graph must also reach
// the URL from the internet, which no local check can show.
func checkNotifications(ctx context.Context, cfg *config.Config, timeout time.Duration) checkRow {
	u := cfg.Graph.NotificationsURL
	row := checkRow{Check: "notifications", Target: redact.URLs(u)}
	answerer := "the process on http.listen " + cfg.HTTP.Listen
	if ln, err := net.Listen("tcp", cfg.HTTP.Listen); err == nil {
		mux := http.NewServeMux()
		mux.Handle(graph.NotificationsPath, graph.NewPush(u, slog.New(slog.DiscardHandler)))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		answerer = "check itself on http.listen " + cfg.HTTP.Listen + " (no mailpoller running there)"
	}
	cctx, cancel := context.WithTimeout(ctx, min(timeout, graph.ValidationLimit))
	defer cancel()
	took, err := graph.ValidateNotificationURL(cctx, &http.Client{}, u)
	var he *graph.HandshakeError
	var ce *tls.CertificateVerificationError
	switch {
	case err == nil:
		row.OK = true
		row.Detail = fmt.Sprintf("validation answered in %.1f ms by %s; Graph must reach it from the internet too", took.Seconds()*1000, answerer)
	case errors.As(err, &he) && he.NotSet:
		row.Cause = err.Error()
		row.Fix = "the mailpoller behind the URL runs an older config: reload it (kill -HUP) with this one"
	case errors.As(err, &he):
		row.Cause = err.Error()
		row.Fix = "the URL reaches something else: forward it (reverse proxy or ingress) to http://" + cfg.HTTP.Listen + graph.NotificationsPath
	case errors.As(err, &ce):
		row.Cause = err.Error()
		row.Fix = "Graph posts only to a certificate from a public CA that names the URL's host: give the proxy such a certificate"
	case errors.Is(err, context.DeadlineExceeded):
		row.Cause = fmt.Sprintf("no answer within %s: %v", min(timeout, graph.ValidationLimit), err)
		row.Fix = "Graph gives up after 10 s: check that the proxy forwards the URL to http://" + cfg.HTTP.Listen + graph.NotificationsPath
	default:
		row.Cause = err.Error()
		row.Fix = "make the URL's host resolve and reach the proxy that forwards to http://" + cfg.HTTP.Listen + graph.NotificationsPath +
			"; without notifications, Graph mailboxes are polled at poll_interval"
	}
	return row
}
