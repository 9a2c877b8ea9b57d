// Package poller runs mailpoller: one goroutine per mailbox, each opening a
// source (IMAP or EWS), polling it, publishing every new message as an
// event, and only after the PubAck applying the after-read action and
// saving the checkpoint. A failing mailbox backs off on its own and never
// holds up the others.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/source"
)

// Options configure Run.
type Options struct {
	Config *config.Config
	NATS   *publish.Conn
	Logger *slog.Logger
	// Once polls every mailbox one time and returns.
	Once bool
	// OnEvent, if set, is called after each event's PubAck (the demo prints them).
	OnEvent func(*publish.Event)
	// Monitor receives status and metrics; nil makes a private one.
	Monitor *Monitor
	// Grace is how long in-flight work (publish, after-read, checkpoint)
	// may go on once ctx is done; default 10s.
	Grace time.Duration
}

// Result is the outcome of one mailbox in a --once run.
type Result struct {
	Mailbox   config.Mailbox
	Published int
	Err       error
}

// Run polls every mailbox of opts.Config until ctx is done (or once, with
// opts.Once). It returns one Result per mailbox in config order.
//
// Shutdown has two stages: when ctx is done no new poll or batch starts,
// and the batch in flight may finish its publish, after-read action and
// checkpoint for up to opts.Grace; then it is cut off (and replayed on the
// next start, with the same event ids).
func Run(ctx context.Context, opts Options) []Result {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	grace := opts.Grace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		select {
		case <-work.Done():
		case <-ctx.Done():
			if sleep(work, grace) {
				log.Warn("shutdown grace period over, cutting in-flight work off", "grace", grace)
				cancelWork()
			}
		}
	}()
	tokens := newTokens(log)
	mon := opts.Monitor
	if mon == nil {
		mon = NewMonitor()
	}
	mon.mu.Lock()
	mon.ready = func() error {
		if !opts.NATS.NATS().IsConnected() {
			return errors.New("NATS is not connected")
		}
		return nil
	}
	mon.mu.Unlock()
	mbs := opts.Config.Mailboxes()
	results := make([]Result, len(mbs))
	var wg sync.WaitGroup
	for i, mb := range mbs {
		mon.update(mb, func(*MailboxStatus) {})
		w := &worker{
			mb:     mb,
			stop:   ctx,
			mon:    mon,
			nats:   opts.NATS,
			tokens: tokens,
			once:   opts.Once,
			notify: opts.OnEvent,
			log:    log.With("account", mb.Account.Name, "mailbox", mb.Address, "folder", mb.Folder),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					w.log.Error("mailbox loop panicked", "panic", p)
					mon.metrics.panics.Inc()
					results[i] = Result{Mailbox: mb, Err: fmt.Errorf("panic: %v", p)}
				}
			}()
			n, err := w.run(work)
			results[i] = Result{Mailbox: mb, Published: n, Err: err}
		}()
	}
	wg.Wait()
	return results
}

// tokens keeps one auth.Source per app registration, shared by all its
// mailboxes, so there is one token request per app per token lifetime.
type tokens struct {
	mu  sync.Mutex
	log *slog.Logger
	m   map[string]*auth.Source
}

func newTokens(log *slog.Logger) *tokens {
	return &tokens{log: log, m: map[string]*auth.Source{}}
}

func (t *tokens) source(a *config.Account, hc *http.Client) (*auth.Source, error) {
	key := strings.Join([]string{a.AuthorityURL(), a.TenantID, a.ClientID}, "|")
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[key]; ok {
		return s, nil
	}
	var cert, key2 string
	if a.Certificate != nil {
		cert, key2 = a.Certificate.CertFile, a.Certificate.KeyFile
	}
	s, err := auth.New(auth.Credentials{
		Authority:          a.AuthorityURL(),
		TenantID:           a.TenantID,
		ClientID:           a.ClientID,
		ClientSecret:       a.ClientSecret,
		CertFile:           cert,
		KeyFile:            key2,
		FederatedTokenFile: a.FederatedTokenFile,
	}, &auth.Options{HTTPClient: hc, Logger: t.log.With("account", a.Name)})
	if err != nil {
		return nil, fmt.Errorf("account %s credentials: %w", a.Name, err)
	}
	t.m[key] = s
	return s, nil
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isPermanent reports whether retrying soon cannot help.
func isPermanent(err error) bool {
	if errors.Is(err, source.ErrPermanent) {
		return true
	}
	var ae *auth.Error
	return errors.As(err, &ae) && !ae.Transient
}
