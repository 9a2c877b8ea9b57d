package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/source"
)

// worker owns one mailbox's loop. Its fields are used by its goroutine
// and by the commit goroutine it starts for a batch, one at a time: see
// handle.
type worker struct {
	mb         config.Mailbox
	stop       context.Context // done: start nothing new
	mon        *Monitor
	nats       *publish.Conn
	tokens     *Transports
	once       bool
	notify     func(*publish.Event)
	log        *slog.Logger
	published  int
	checkpoint []byte // last saved, for /status
	state      string // last logged state, to log changes once
	lastCause  string
	committing chan error    // the batch being committed; nil when none
	stall      time.Duration // see Options.StallTimeout
	dog        watchdog
	polls      int    // polls that went through, to reset the backoff
	wake       *waker // cuts a backoff short on reload; nil: never
}

// prepareParallel is how many messages of a batch are parsed and have
// their blobs stored at once.
const prepareParallel = 4

// backoffMin is the first retry's wait and the floor of a server's
// suggested wait; a variable so that tests can shorten it.
var backoffMin = time.Second

// Backoff bounds.
const (
	backoffMax       = 5 * time.Minute
	permanentBackoff = 15 * time.Minute
	// minReconnectGap: a source may ask to reconnect (source.ErrReconnect)
	// for free at most this often; sooner counts as a failure and backs off.
	minReconnectGap = 10 * time.Second
)

// onceBudget is how long `run --once` keeps retrying a mailbox's
// transient failures (a token endpoint's 503, a throttled login) before
// the run fails; permanent and misconfigured ones fail at once. A
// variable for tests.
var onceBudget = 60 * time.Second

// errStopping ends a poll between two batches when shutdown has begun.
var errStopping = errors.New("shutting down")

// run is the mailbox loop. ctx bounds in-flight work (publish, after-read,
// checkpoint); w.stop ends the loop between batches and polls.
func (w *worker) run(ctx context.Context) (int, error) {
	// attempt counts failures since the last poll that went through: a
	// server that accepts the login and then fails every command still
	// backs off further each time.
	attempt := 0
	var reconnected time.Time
	begun := time.Now()
	for w.stop.Err() == nil {
		// A connect that hangs is only reported: the transport's own
		// deadlines end it (ctx bounds the connection's whole life).
		w.dog.arm("connecting", w.stall, w.stalled, func() {})
		src, err := w.open(ctx)
		w.dog.disarm()
		if err == nil {
			w.setState(StateConnected)
			polls := w.polls
			err = w.pollLoop(ctx, src)
			src.Close()
			if w.polls > polls {
				attempt = 0
			}
			if err == nil {
				return w.published, nil
			}
			if errors.Is(err, source.ErrReconnect) && time.Since(reconnected) >= minReconnectGap {
				reconnected = time.Now()
				w.log.Debug("reconnecting", "reason", err)
				continue
			}
		}
		if w.stop.Err() != nil || ctx.Err() != nil {
			return w.published, nil
		}
		attempt++
		delay := backoff(attempt, err)
		if w.once && (isPermanent(err) || misconfigured(err) || time.Since(begun)+delay > onceBudget) {
			fix := w.fix(ctx, err)
			args := []any{"err", err, "attempts", attempt}
			if fix != "" {
				args = append(args, "fix", fix)
			}
			w.log.Error("mailbox failed", args...)
			w.mon.update(w.mb, func(s *MailboxStatus) { s.State, s.LastError, s.Fix = StateFailed, err.Error(), fix })
			return w.published, err
		}
		w.backingOff(ctx, err, delay)
		live, woken := w.sleepBackoff(delay)
		if !live {
			return w.published, nil
		}
		if woken {
			w.reloaded(err)
		}
	}
	return w.published, nil
}

// backoff is exponential with jitter and long for errors that only an
// admin can fix. A server's suggested wait is honoured as a floor, clamped
// to [backoffMin, permanentBackoff] whatever number the server sent.
func backoff(attempt int, err error) time.Duration {
	if isPermanent(err) {
		return permanentBackoff
	}
	d := backoffMin << min(max(attempt-1, 0), 10)
	d = min(d, backoffMax)
	d = d/2 + rand.N(d/2+1)
	if s, ok := retryAfter(err); ok {
		d = max(d, min(max(s, backoffMin), permanentBackoff))
	}
	return d
}

func (w *worker) setState(s string) {
	w.mon.update(w.mb, func(st *MailboxStatus) {
		st.State = s
		if s == StateCaughtUp || s == StateConnected {
			st.LastError, st.Fix, st.NextTry = "", "", nil
		}
		if s == StateCaughtUp {
			st.Stalled = false
		}
	})
	if w.state != s {
		w.state = s
		w.lastCause = ""
		w.log.Info("mailbox "+s, "published", w.published)
	}
}

// sleepBackoff waits out a backoff, cut short by a reload; live reports
// whether the loop should go on, woken whether a reload cut it short.
func (w *worker) sleepBackoff(d time.Duration) (live, woken bool) {
	if w.wake == nil {
		return sleep(w.stop, d), false
	}
	return w.wake.sleep(w.stop, d)
}

// reloaded prepares the retry a reload asked for after err: when only an
// admin could fix err (a role granted, consent given), the cached token
// predates the fix and lacks its roles, so it is dropped and the retry
// asks Entra ID for a new one.
func (w *worker) reloaded(err error) {
	w.log.Info("retrying at once after a reload", "err", err)
	var f source.Fixer
	if !errors.As(err, &f) {
		return
	}
	ts, terr := w.tokens.TokenSource(w.mb.Account)
	if terr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(w.stop, 10*time.Second)
	defer cancel()
	if tok, terr := ts.Token(ctx); terr == nil {
		ts.Invalidate(tok)
	}
}

func (w *worker) backingOff(ctx context.Context, err error, delay time.Duration) {
	w.state = StateBackingOff
	fix := w.fix(ctx, err)
	next := time.Now().Add(delay)
	w.mon.update(w.mb, func(st *MailboxStatus) {
		st.State, st.LastError, st.Fix, st.NextTry = StateBackingOff, err.Error(), fix, &next
		st.Stalled = st.Stalled || isStall(err)
	})
	w.mon.metrics.errors.WithLabelValues(w.mb.Account.Name, w.mb.Address, errorKind(err)).Inc()
	cause := err.Error()
	if cause == w.lastCause {
		w.log.Debug("still backing off", "err", err, "retry_in", delay.Round(time.Millisecond))
		return
	}
	w.lastCause = cause
	level := slog.LevelWarn
	if isPermanent(err) {
		level = slog.LevelError
	}
	args := []any{"err", err, "retry_in", delay.Round(time.Millisecond)}
	if fix != "" {
		args = append(args, "fix", fix)
	}
	w.log.Log(context.Background(), level, "mailbox backing off", args...)
}

// open connects the mailbox through its account's transport; ctx bounds
// connecting only.
func (w *worker) open(ctx context.Context) (source.Source, error) {
	tr, err := w.tokens.For(w.mb.Account)
	if err != nil {
		return nil, err
	}
	return tr.Open(ctx, w.mb.Mailbox, w.log)
}

func (w *worker) stateKey() string {
	return publish.StateKey(w.mb.Account.Name, w.mb.Address, w.mb.Folder)
}

func (w *worker) pollLoop(ctx context.Context, src source.Source) error {
	for {
		var st []byte
		err := w.retryNATS(ctx, "load checkpoint", func() (err error) {
			st, err = w.nats.LoadState(ctx, w.stateKey())
			return err
		})
		if err != nil {
			return err
		}
		before := w.published
		pollStart := time.Now()
		pollCtx, cancel := context.WithCancel(ctx)
		w.dog.arm("polling", w.stall, w.stalled, func() { cancel(); src.Close() })
		err = src.Poll(pollCtx, st, func(_ context.Context, b source.Batch) error { return w.handle(ctx, src, b) })
		if cerr := w.committed(); err == nil || errors.Is(err, errStopping) && cerr != nil {
			err = cerr
		}
		if fired := w.dog.disarm(); fired != nil && err != nil {
			err = fmt.Errorf("%w; closed the connection (%v)", fired, err)
		}
		cancel()
		if err != nil {
			if errors.Is(err, errStopping) || w.stop.Err() != nil && ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		w.mon.metrics.pollDur.WithLabelValues(w.mb.Account.Name, w.mb.Address).Observe(now.Sub(pollStart).Seconds())
		w.mon.update(w.mb, func(s *MailboxStatus) {
			s.LastPoll, s.LastSuccess, s.Published, s.Backlog = &now, &now, int64(w.published), 0
			if w.checkpoint != nil {
				s.Checkpoint = w.checkpoint
			}
		})
		w.polls++
		w.setState(StateCaughtUp)
		if n := w.published - before; n > 0 {
			w.log.Info("poll done", "published", n)
		}
		if w.once {
			return nil
		}
		if wt, ok := src.(source.Waiter); ok {
			waitCtx, cancel := context.WithCancel(w.stop)
			w.dog.arm("waiting for new mail", w.mb.PollInterval+w.stall, w.stalled, func() { cancel(); src.Close() })
			err := wt.Wait(waitCtx, w.mb.PollInterval)
			if fired := w.dog.disarm(); fired != nil {
				err = fmt.Errorf("%w; closed the connection (%v)", fired, err)
			}
			cancel()
			if err != nil {
				if w.stop.Err() != nil {
					return nil
				}
				return err
			}
		} else if !sleep(w.stop, w.mb.PollInterval) {
			return nil
		}
		if w.stop.Err() != nil {
			return nil
		}
	}
}

// handle takes batch b through a two-stage pipeline. It prepares b (parses
// every message and stores its blobs, several at once), then waits until
// the batch before has been committed, and starts committing b in a
// goroutine: publish its events in order, then apply the after-read action
// to the published items, then save the checkpoint, in that order only. So
// batch n+1 is fetched and prepared while batch n is committed, and a
// checkpoint never passes a batch whose commit failed: the failure is
// returned by the next handle, or by committed once Poll has returned.
func (w *worker) handle(ctx context.Context, src source.Source, b source.Batch) error {
	if w.stop.Err() != nil {
		return errStopping
	}
	w.dog.kick()
	w.setBacklog(b.Items)
	preps := w.prepare(ctx, b.Items)
	w.dog.kick()
	if err := w.committed(); err != nil {
		return err
	}
	done := make(chan error, 1)
	w.committing = done
	go func() { done <- w.commit(ctx, src, b, preps) }()
	return nil
}

// committed waits for the batch being committed, if any, and returns its
// error.
func (w *worker) committed() error {
	if w.committing == nil {
		return nil
	}
	err := <-w.committing
	w.committing = nil
	return err
}

// commit is the second stage of handle.
func (w *worker) commit(ctx context.Context, src source.Source, b source.Batch, preps []prepared) error {
	published, err := w.publishPrepared(ctx, b.Items, preps)
	if err != nil {
		return err
	}
	done := make([]source.Item, 0, len(b.Items))
	var dead []source.Item
	for i, it := range b.Items {
		switch {
		case published[i]:
			done = append(done, it)
		case !errors.Is(it.Err, source.ErrVanished):
			dead = append(dead, it)
		}
	}
	if err := src.AfterRead(ctx, done); err != nil {
		return err
	}
	if q, ok := src.(source.Quarantiner); ok && w.mb.Quarantine != "" && len(dead) > 0 {
		if err := q.Quarantine(ctx, dead, w.mb.Quarantine); err != nil {
			w.log.Warn("could not move dead-lettered mail to quarantine; it stays in place", "folder", w.mb.Quarantine, "err", err)
		} else {
			w.log.Info("dead-lettered mail moved to quarantine", "folder", w.mb.Quarantine, "messages", len(dead))
		}
	}
	if b.State == nil {
		return nil
	}
	err = w.retryNATS(ctx, "save checkpoint", func() error { return w.nats.SaveState(ctx, w.stateKey(), b.State) })
	if err == nil {
		w.checkpoint = b.State
	}
	return err
}

// setBacklog records the items not handled yet.
func (w *worker) setBacklog(rest []source.Item) {
	var oldest time.Time
	for _, it := range rest {
		if !it.Received.IsZero() && (oldest.IsZero() || it.Received.Before(oldest)) {
			oldest = it.Received
		}
	}
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	l := []string{w.mb.Account.Name, w.mb.Address, w.mb.Folder}
	w.mon.metrics.backlog.WithLabelValues(l...).Set(float64(len(rest)))
	w.mon.metrics.oldest.WithLabelValues(l...).Set(age)
	w.mon.update(w.mb, func(s *MailboxStatus) { s.Backlog = len(rest) })
}

func (w *worker) origin(it source.Item) publish.Origin {
	return publish.Origin{
		Account:  w.mb.Account.Name,
		Mailbox:  w.mb.Address,
		Folder:   w.mb.Folder,
		Protocol: w.mb.Account.Protocol,
		ServerID: it.ServerID,
	}
}

// pending is an event on its way to JetStream.
type pending struct {
	i       int
	ev      *publish.Event
	msg     *nats.Msg
	fut     jetstream.PubAckFuture
	start   time.Time
	subject string
}

// prepared is an item made ready to publish, or why it cannot be.
type prepared struct {
	p        pending
	tooLarge error
	err      error
}

// prepare parses every item and stores its blobs, several at once: this
// is where the time goes, and it needs no order.
func (w *worker) prepare(ctx context.Context, items []source.Item) []prepared {
	preps := make([]prepared, len(items))
	sem := make(chan struct{}, prepareParallel)
	var wg sync.WaitGroup
	for i, it := range items {
		if it.Err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := w.origin(it)
			m := message.Parse(it.Raw, nil)
			if it.Truncated {
				m.Size = it.Size
				m.Problems = append(m.Problems, message.Problem{Code: message.ProblemTooLarge,
					Detail: fmt.Sprintf("message is %d bytes, over max_message_bytes %d: only its header was read", it.Size, w.mb.MaxMessageBytes)})
			}
			pr := &preps[i]
			pr.p = pending{i: i, ev: publish.NewEvent(o, m, it.Received), start: time.Now(), subject: publish.Subject(w.nats.Prefix(), o.Account, o.Mailbox)}
			var raw []byte // nil: no raw blob, no raw field (store_raw)
			if w.mb.StoreRaw.Keep(len(m.Problems)) {
				raw = it.Raw
			}
			pr.err = w.retryNATS(ctx, "store blobs", func() error {
				var err error
				pr.p.msg, err = w.nats.Prepare(ctx, pr.p.subject, pr.p.ev, raw)
				if errors.Is(err, publish.ErrTooLarge) {
					// The event cannot be sent: its dead letter carries
					// the original, whatever store_raw says.
					if pr.p.ev.Data.Raw == nil && it.Raw != nil {
						ref, perr := w.nats.PutRaw(ctx, it.Raw)
						if perr != nil {
							return perr
						}
						pr.p.ev.Data.Raw = ref
					}
					pr.tooLarge, err = err, nil
				}
				return err
			})
		}()
	}
	wg.Wait()
	return preps
}

// publishPrepared turns every prepared item into an event (or a dead
// letter) and returns once JetStream has acknowledged each event, reporting
// which items became events. Events are sent without waiting, in order, so
// a batch costs about one round trip, not one per message; any send that
// fails is repeated synchronously (same Nats-Msg-Id) until it is
// acknowledged.
func (w *worker) publishPrepared(ctx context.Context, items []source.Item, preps []prepared) ([]bool, error) {
	published := make([]bool, len(items))
	var ps []pending
	for i, it := range items {
		o := w.origin(it)
		pr := preps[i]
		switch {
		case it.Err != nil:
			if err := w.deadLetter(ctx, o, it, nil, it.Err.Error()); err != nil {
				return nil, err
			}
			continue
		case pr.err != nil:
			return nil, pr.err
		case pr.tooLarge != nil:
			if err := w.deadLetter(ctx, o, it, pr.p.ev.Data.Raw, pr.tooLarge.Error()); err != nil {
				return nil, err
			}
			continue
		}
		p := pr.p
		p.fut, _ = w.nats.PublishAsync(p.msg) // nil future: sent synchronously below
		ps = append(ps, p)
	}
	for _, p := range ps {
		acked := false
		if p.fut != nil {
			select {
			case <-p.fut.Ok():
				acked = true
			case <-p.fut.Err():
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if !acked {
			again := &nats.Msg{Subject: p.msg.Subject, Header: p.msg.Header, Data: p.msg.Data}
			if err := w.retryNATS(ctx, "publish", func() error { _, err := w.nats.PublishMsg(ctx, again); return err }); err != nil {
				return nil, err
			}
		}
		it := items[p.i]
		published[p.i] = true
		w.mon.metrics.publishDur.WithLabelValues(p.ev.Data.Account).Observe(time.Since(p.start).Seconds())
		w.mon.metrics.published.WithLabelValues(p.ev.Data.Account, p.ev.Data.Mailbox).Inc()
		w.mon.metrics.bytes.WithLabelValues(p.ev.Data.Account, p.ev.Data.Mailbox).Add(float64(len(it.Raw)))
		w.log.Debug("event published", "uid", it.UID, "server_id", it.ServerID, "message_id", p.ev.Data.MessageID, "event_id", p.ev.ID, "subject", p.subject)
		w.published++
		w.setBacklog(items[p.i+1:])
		if w.notify != nil {
			w.notify(p.ev)
		}
	}
	return published, nil
}

func (w *worker) deadLetter(ctx context.Context, o publish.Origin, it source.Item, raw *message.Blob, reason string) error {
	dl := &publish.DeadLetter{
		ID: publish.EventID(o), Account: o.Account, Mailbox: o.Mailbox, Folder: o.Folder,
		Protocol: o.Protocol, ServerID: o.ServerID, Reason: reason, Attempts: 1, Raw: raw,
	}
	subject := publish.DeadLetterSubject(w.nats.Prefix(), o.Account, o.Mailbox)
	w.log.Warn("message dead-lettered", "server_id", it.ServerID, "reason", reason, "subject", subject)
	w.mon.metrics.deadLetter.WithLabelValues(o.Account, o.Mailbox).Inc()
	return w.retryNATS(ctx, "publish dead letter", func() error { return w.nats.PublishDeadLetter(ctx, subject, dl) })
}

// retryNATS runs f until it succeeds or ctx ends: while NATS is away the
// mailbox waits, and nothing is flagged on the mail server meanwhile.
func (w *worker) retryNATS(ctx context.Context, what string, f func() error) error {
	for attempt := 1; ; attempt++ {
		w.dog.kick() // waiting for NATS is not a stalled mail server
		err := f()
		if err == nil {
			if attempt > 1 {
				w.log.Info("NATS is back", "op", what)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := backoff(attempt, nil)
		d = min(d, 30*time.Second)
		if attempt == 1 {
			w.log.Warn("NATS unavailable, waiting", "op", what, "err", err)
			w.mon.metrics.errors.WithLabelValues(w.mb.Account.Name, w.mb.Address, "nats").Inc()
		}
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// stalled reports that the mailbox made no progress for too long; the
// watchdog closes its connection next, and the loop reconnects.
func (w *worker) stalled(err error) {
	w.log.Warn("mailbox stalled, closing the connection", "err", err)
	w.mon.metrics.errors.WithLabelValues(w.mb.Account.Name, w.mb.Address, "stalled").Inc()
	w.mon.update(w.mb, func(st *MailboxStatus) {
		st.State, st.Stalled, st.LastError, st.Fix = StateStalled, true, err.Error(), Fix(err, w.admin())
	})
}
