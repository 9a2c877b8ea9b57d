// Package poller runs mailpoller: one goroutine per mailbox, each opening a
// source (IMAP or EWS), polling it, publishing every new message as an
// event, and only after the PubAck applying the after-read action and
// saving the checkpoint. A failing mailbox backs off on its own and never
// holds up the others.
package poller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/graph"
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
	// Instance names this process in the lease bucket. Empty: no leases
	// (this process polls every mailbox). Give each of several cooperating
	// processes its own stable name (e.g. the pod name), so a restart takes
	// its own leases back at once.
	Instance string
	// LeaseTTL is how long a dead instance's mailboxes stay claimed; default 30s.
	LeaseTTL time.Duration
	// Reload delivers new configs to apply while running (SIGHUP).
	Reload <-chan *config.Config
	// Grace is how long in-flight work (publish, after-read, checkpoint)
	// may go on once ctx is done; default 10s.
	Grace time.Duration
	// StallTimeout is how long a mailbox may go without progress (a batch
	// handed over, a poll finished, a wait ended) before it is reported
	// as stalled in /status and /readyz and its connection is closed so it
	// reconnects; default 10m. A wait for new mail (IDLE, streaming) may
	// last its poll interval plus this.
	StallTimeout time.Duration
}

// Result is the outcome of one mailbox in a --once run.
type Result struct {
	Mailbox   config.Mailbox
	Published int
	Err       error
}

// Run polls every mailbox of opts.Config until ctx is done (or once, with
// opts.Once). It returns one Result per mailbox that ran, in config order.
//
// Shutdown has two stages: when ctx is done no new poll or batch starts,
// and the batch in flight may finish its publish, after-read action and
// checkpoint for up to opts.Grace; then it is cut off (and replayed on the
// next start, with the same event ids).
//
// Each config received on opts.Reload replaces the running one: added
// mailboxes start, removed ones stop (with the same grace), changed ones
// restart, unchanged ones go on undisturbed.
func Run(ctx context.Context, opts Options) []Result {
	r := newRunner(ctx, opts)
	defer r.cancelWork()
	r.apply(opts.Config)
	defer r.unsubscribe()
	if opts.Once {
		return r.wait()
	}
	for {
		select {
		case <-ctx.Done():
			r.log.Info("shutting down", "mailboxes", len(r.order), "grace", r.opts.Grace)
			begun := time.Now()
			results := r.wait()
			r.log.Info("shut down", "took", time.Since(begun).Round(time.Millisecond))
			return results
		case cfg := <-opts.Reload:
			if cfg.Graph.NotificationsURL != opts.Config.Graph.NotificationsURL {
				r.log.Warn("graph.notifications_url changed: it takes effect at the next start", "now", opts.Config.Graph.NotificationsURL)
			}
			d := r.apply(cfg)
			r.log.Info("config reloaded", "mailboxes", len(cfg.Mailboxes()),
				"added", d.added, "removed", d.removed, "changed", d.changed, "retried", d.retried)
		}
	}
}

// diff is what apply changed, each mailbox as account/address/folder.
type diff struct {
	added, removed, changed []string
	// retried are unchanged mailboxes whose backoff was cut short: a
	// reload is how an admin says "I fixed it".
	retried []string
}

// runner owns the mailbox goroutines of one Run.
type runner struct {
	opts       Options
	log        *slog.Logger
	stop       context.Context // Run's ctx: done means start nothing new
	work       context.Context // bounds in-flight work; ends opts.Grace after stop
	cancelWork context.CancelFunc
	tokens     *Transports
	mon        *Monitor
	leases     *leases     // nil when Options.Instance is ""
	push       *graph.Push // nil when graph.notifications_url is not set

	mu      sync.Mutex
	order   []string // keys in config order, for results
	running map[string]*running
	started bool // the first apply is done
}

// running is one mailbox goroutine.
type running struct {
	mb     config.Mailbox
	sig    string
	cancel context.CancelFunc // stops this mailbox only
	done   chan struct{}
	wake   *waker
	result Result
}

func newRunner(ctx context.Context, opts Options) *runner {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = config.DefaultStallTimeout
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
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
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-work.Done():
		case <-ctx.Done():
			if sleep(work, opts.Grace) {
				log.Warn("shutdown grace period over, cutting in-flight work off", "grace", opts.Grace)
				cancelWork()
			}
		}
	}()
	r := &runner{
		opts: opts, log: log, stop: ctx, work: work, cancelWork: cancelWork,
		tokens: NewTransports(log), mon: mon,
		running: map[string]*running{},
	}
	if u := opts.Config.Graph.NotificationsURL; u != "" {
		r.push = graph.NewPush(u, log)
		r.tokens.WithPush(r.push)
		mon.mu.Lock()
		mon.push = r.push
		mon.mu.Unlock()
	}
	if err := mon.reg.Register(r.tokens); err != nil {
		// A second Run on the same Monitor: keep the first collector.
		log.Debug("token metrics already registered", "err", err)
	}
	if !opts.Once {
		go r.summarize(ctx, 5*time.Minute)
	}
	if opts.Instance != "" {
		// Without the lease bucket this instance cannot know which mailboxes
		// are its own, so it polls none until the bucket answers.
		for attempt := 1; ctx.Err() == nil; attempt++ {
			ls, err := newLeases(ctx, opts.NATS, opts.Instance, opts.LeaseTTL)
			if err == nil {
				r.leases = ls
				if !opts.Once {
					go ls.heartbeat(ctx)
				}
				break
			}
			if attempt == 1 {
				log.Error("lease bucket unavailable: waiting for it before polling", "err", err)
			}
			sleep(ctx, backoff(attempt, nil))
		}
	}
	return r
}

// apply makes the running set match cfg and says what it changed.
// Unchanged mailboxes that are backing off retry at once.
func (r *runner) apply(cfg *config.Config) diff {
	var d diff
	want := map[string]config.Mailbox{}
	var order []string
	for _, mb := range cfg.Mailboxes() {
		k := key(mb)
		want[k] = mb
		order = append(order, k)
	}
	if r.leases != nil {
		r.leases.mu.Lock()
		r.leases.total = len(order)
		r.leases.mu.Unlock()
	}
	r.mu.Lock()
	var stopping []*running
	for k, h := range r.running {
		mb, ok := want[k]
		switch {
		case !ok:
			d.removed = append(d.removed, k)
		case signature(mb) != h.sig:
			d.changed = append(d.changed, k)
		default:
			if h.wake.wake() {
				d.retried = append(d.retried, k)
			}
			continue
		}
		stopping = append(stopping, h)
		delete(r.running, k)
	}
	r.order = order
	r.mu.Unlock()
	for _, h := range stopping {
		r.log.Info("mailbox stopping (config changed)", "account", h.mb.Account.Name, "mailbox", h.mb.Address)
		h.cancel()
		<-h.done
		if _, ok := want[key(h.mb)]; !ok {
			r.mon.remove(h.mb)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	changed := map[string]bool{}
	for _, k := range d.changed {
		changed[k] = true
	}
	for _, k := range order {
		if _, ok := r.running[k]; !ok {
			if !changed[k] && r.started {
				d.added = append(d.added, k)
			}
			r.running[k] = r.start(want[k], time.Duration(n)*staggerStep)
			n++
		}
	}
	r.started = true
	for _, l := range [][]string{d.added, d.removed, d.changed, d.retried} {
		sort.Strings(l)
	}
	return d
}

// staggerStep spaces the first connection of each mailbox, so a thousand
// mailboxes do not log in to Exchange in the same second.
const staggerStep = 10 * time.Millisecond

// start launches one mailbox goroutine, whose first connection waits
// delay. Called with r.mu held.
func (r *runner) start(mb config.Mailbox, delay time.Duration) *running {
	stop, cancel := context.WithCancel(r.stop)
	work, cancelWork := context.WithCancel(r.work)
	go func() { // a stopped mailbox gets the grace period, then its work ends
		<-stop.Done()
		if sleep(work, r.opts.Grace) {
			cancelWork()
		}
	}()
	h := &running{mb: mb, sig: signature(mb), cancel: cancel, done: make(chan struct{}), wake: &waker{}}
	r.mon.update(mb, func(*MailboxStatus) {})
	r.mon.zeroErrors(mb)
	w := &worker{
		mb:     mb,
		stop:   stop,
		mon:    r.mon,
		nats:   r.opts.NATS,
		tokens: r.tokens,
		once:   r.opts.Once,
		notify: r.opts.OnEvent,
		stall:  stallTimeout(mb, r.opts.StallTimeout),
		wake:   h.wake,
		log:    r.log.With("account", mb.Account.Name, "mailbox", mb.Address, "folder", mb.Folder),
	}
	go func() {
		defer close(h.done)
		defer cancelWork()
		defer func() {
			if p := recover(); p != nil {
				w.log.Error("mailbox loop panicked", "panic", p)
				r.mon.metrics.panics.Inc()
				h.result = Result{Mailbox: mb, Published: w.published, Err: fmt.Errorf("panic: %v", p)}
			}
		}()
		if !sleep(stop, delay) {
			h.result = Result{Mailbox: mb}
			return
		}
		var err error
		if r.leases == nil {
			_, err = w.run(work)
		} else {
			err = r.runLeased(stop, work, w)
		}
		h.result = Result{Mailbox: mb, Published: w.published, Err: err}
		if err == nil {
			r.mon.update(mb, func(s *MailboxStatus) {
				if s.State != StateFailed {
					s.State = StateStopped
				}
			})
		}
	}()
	return h
}

// runLeased runs w only while this instance holds the mailbox's lease,
// waiting in standby while another instance holds it.
func (r *runner) runLeased(stop, work context.Context, w *worker) error {
	k := leaseKey(w.mb)
	labels := []string{w.mb.Account.Name, w.mb.Address, w.mb.Folder}
	standby := func(holder string) {
		r.mon.metrics.lease.WithLabelValues(labels...).Set(0)
		r.mon.update(w.mb, func(s *MailboxStatus) {
			s.State = StateStandby
			if holder != "" {
				s.LastError = "polled by instance " + holder
			}
		})
	}
	for stop.Err() == nil {
		var l *lease
		var holder string
		var err error
		if r.opts.Once || r.leases.wantMore() {
			// A claim that took longer than renewals may would be
			// given up at once; give up on it instead.
			actx, cancel := context.WithTimeout(stop, r.leases.ttl/3)
			l, holder, err = r.leases.tryAcquire(actx, k)
			cancel()
		}
		if l == nil {
			if r.opts.Once {
				if err == nil {
					err = fmt.Errorf("mailbox is being polled by instance %s", holder)
				}
				return err
			}
			if err != nil {
				w.log.Warn("lease check failed", "err", err)
			}
			standby(holder)
			sleep(stop, r.leases.ttl/3)
			continue
		}
		w.log.Info("lease acquired", "instance", r.leases.owner)
		r.mon.metrics.lease.WithLabelValues(labels...).Set(1)
		// The work stops gracefully on stop or when shed, at once when the
		// lease is lost; renewals go on until the work has stopped.
		leaseStop, cancelLease := context.WithCancel(stop)
		leaseWork, cancelLeaseWork := context.WithCancel(work)
		renew, stopRenew := context.WithCancel(context.Background())
		var shed atomic.Bool
		kept := make(chan error, 1)
		go func() {
			err := l.keep(renew, func() { shed.Store(true); cancelLease() })
			if err != nil {
				cancelLeaseWork() // another instance may take over: stop at once
			}
			kept <- err
		}()
		w.stop = leaseStop
		_, err = w.run(leaseWork)
		stopRenew()
		kerr := <-kept
		cancelLease()
		cancelLeaseWork()
		l.release()
		r.mon.metrics.lease.WithLabelValues(labels...).Set(0)
		switch {
		case kerr != nil:
			w.log.Warn("lease lost, mailbox stopped", "err", kerr)
			standby("")
		case shed.Load() && stop.Err() == nil:
			w.log.Info("mailbox handed to another instance for balance")
			standby("")
			sleep(stop, r.leases.ttl) // let the instance that joined take it
		default:
			return err
		}
	}
	return nil
}

// summarize logs one line about all mailboxes every interval.
func (r *runner) summarize(ctx context.Context, every time.Duration) {
	for sleep(ctx, every) {
		var ok, failing, standby int
		var published int64
		for _, s := range r.mon.Snapshot() {
			switch s.State {
			case StateCaughtUp, StateConnected:
				ok++
			case StateStandby:
				standby++
			default:
				failing++
			}
			published += s.Published
		}
		r.log.Info("summary", "mailboxes_ok", ok, "mailboxes_failing", failing, "mailboxes_standby", standby, "published", published)
	}
}

// unsubscribe deletes the Graph subscriptions, once the mailboxes have
// stopped, so that Graph stops posting to this process.
func (r *runner) unsubscribe() {
	if r.push == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.push.Close(ctx); err != nil {
		r.log.Warn("could not delete every Graph subscription; Graph drops them when they expire (at most 3 days)", "err", err)
	}
}

// wait waits for every mailbox goroutine and returns their results in
// config order.
func (r *runner) wait() []Result {
	r.mu.Lock()
	hs := make([]*running, 0, len(r.order))
	for _, k := range r.order {
		if h, ok := r.running[k]; ok {
			hs = append(hs, h)
		}
	}
	r.mu.Unlock()
	results := make([]Result, 0, len(hs))
	for _, h := range hs {
		<-h.done
		results = append(results, h.result)
	}
	return results
}

// signature identifies a mailbox's whole configuration (secrets included,
// hashed), so a reload restarts exactly the mailboxes whose settings changed.
func signature(mb config.Mailbox) string {
	a := *mb.Account
	// What the account says about its other mailboxes does not concern this one.
	a.Mailbox, a.AdditionalUsers, a.Options = "", nil, config.Options{}
	// The whole resolved mailbox, so a field added to config.Mailbox is
	// compared too; the account is compared through a above.
	m := mb
	m.Account = nil
	b, _ := json.Marshal(struct {
		A config.Account
		M config.Mailbox
	}{a, m})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
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

// stallTimeout is the watchdog's bound for mb: its account's
// timeouts.stall, else def.
func stallTimeout(mb config.Mailbox, def time.Duration) time.Duration {
	if d := mb.Account.Timeouts.Stall.D(); d > 0 {
		return d
	}
	return def
}
