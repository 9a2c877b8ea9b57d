package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/redact"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs, path := flags("run", stderr, "config file")
	once := fs.Bool("once", false, "poll every mailbox once, then exit (non-zero if any mailbox failed)")
	instance := fs.String("instance", os.Getenv("MAILPOLLER_INSTANCE"), "name of this instance when several share one config and NATS (enables mailbox leases)")
	natsWait := fs.Duration("nats-wait", defaultNATSWait, "with --once: how long to wait for NATS before giving up (without --once, run waits for NATS as long as it takes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		configFailed(stderr, *path, err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var reload chan *config.Config
	if !*once {
		reload = make(chan *config.Config)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go watchReload(ctx, *path, hup, reload, log)
	}
	return runPoller(ctx, cfg, log, pollOptions{once: *once, instance: *instance, reload: reload, natsWait: *natsWait}, stderr)
}

// pollOptions are runPoller's knobs beyond the config.
type pollOptions struct {
	once     bool
	instance string
	onEvent  func(*publish.Event)
	reload   <-chan *config.Config
	natsWait time.Duration // with once: how long to wait for NATS; 0 means defaultNATSWait
}

// defaultNATSWait is how long `run --once` waits for NATS by default.
const defaultNATSWait = 30 * time.Second

// natsGate answers /readyz with why NATS is not connected yet until the
// poller runs, and passes every other request (and, once open, /readyz
// too) to the monitor.
type natsGate struct {
	next http.Handler
	mu   sync.Mutex
	err  error // why not ready; nil once NATS is connected
}

func (g *natsGate) set(err error) { g.mu.Lock(); g.err = err; g.mu.Unlock() }

func (g *natsGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	err := g.err
	g.mu.Unlock()
	if err != nil && r.URL.Path == "/readyz" {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

// watchReload reloads the config on each SIGHUP; an invalid config is
// rejected with its errors and the running one stays.
func watchReload(ctx context.Context, path string, hup <-chan os.Signal, out chan<- *config.Config, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, err := config.Load(path)
		if err != nil {
			log.Error("config reload rejected, keeping the running config", "file", path, "err", err)
			continue
		}
		select {
		case out <- cfg:
		case <-ctx.Done():
			return
		}
	}
}

// runPoller serves HTTP, connects to NATS (waiting for it, with --once
// up to po.natsWait) and runs the poller until ctx ends (or once).
func runPoller(ctx context.Context, cfg *config.Config, log *slog.Logger, po pollOptions, stderr io.Writer) int {
	once := po.once
	for _, a := range cfg.Accounts {
		if a.TLS.InsecureSkipVerify {
			log.Warn("TLS certificate checks are off for this account (tls.insecure_skip_verify)", "account", a.Name)
		}
	}
	mon := poller.NewMonitor()
	gate := &natsGate{next: mon.Handler(), err: errors.New("NATS not connected yet")}
	if cfg.HTTP.Listen != "" && !once {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			log.Error("cannot serve HTTP: change http.listen, or free the port", "addr", cfg.HTTP.Listen, "err", err)
			return 1
		}
		srv := &http.Server{Handler: gate, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving /metrics /healthz /readyz /status", "addr", ln.Addr().String())
	}
	cctx := ctx
	wait := po.natsWait
	if wait <= 0 {
		wait = defaultNATSWait
	}
	if once {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	nc, err := publish.ConnectNotify(cctx, cfg.NATS, log, func(err error) {
		gate.set(fmt.Errorf("NATS not connected yet: %w", err))
	})
	switch {
	case err != nil && ctx.Err() != nil:
		log.Info("stopped before NATS was reachable", "err", err)
		return 1
	case err != nil && once && cctx.Err() != nil:
		log.Error("NATS not reachable; giving up (run --once --nats-wait)", "url", redact.URLs(cfg.NATS.URL), "waited", wait, "err", err)
		return 1
	case err != nil:
		log.Error("cannot connect to NATS", "err", err)
		return 1
	}
	defer nc.Close()
	if err := mon.Registry().Register(nc.StorageCollector()); err != nil {
		log.Warn("stored bytes metric not registered", "err", err)
	}
	gate.set(nil)
	results := poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: log, Once: once, OnEvent: po.onEvent,
		Monitor: mon, Reload: po.reload, Instance: po.instance})
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			failedLine(stderr, cfg.Log, r.Mailbox.Account.Name, r.Mailbox.Address, r.Err)
		}
	}
	if once {
		total := 0
		for _, r := range results {
			total += r.Published
		}
		log.Info("run --once finished", "mailboxes", len(results), "failed", failed, "published", total)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
