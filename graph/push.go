package graph

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Change notifications (../shared/graph/README.md): a subscription per
// folder asks Graph to POST to a public URL when a message is created
// there. A notification only wakes the folder's Source, which then runs
// its delta query; nothing is read from the notification itself, so a lost
// or forged one costs at most a poll, and the delta link stays the only
// checkpoint.

const (
	// NotificationsPath is where Push is served on the operations
	// listener; the public notifications URL must be forwarded to it.
	NotificationsPath = "/graph/notifications"
	// subLifetime is how long a subscription is asked to live; Graph allows
	// up to 10,080 minutes for messages. It is renewed when less than half
	// is left.
	subLifetime = 72 * time.Hour
	// maxNotification bounds a notification request's body.
	maxNotification = 1 << 20
)

// Push keeps the change-notification subscriptions of every Graph mailbox
// of a process and serves the URL Graph posts them to. Sources subscribe
// through it while they wait for mail (Source.Wait); Close deletes the
// subscriptions. It is safe for concurrent use.
type Push struct {
	url string
	log *slog.Logger

	mu     sync.Mutex
	byID   map[string]*subscription // by subscription id
	folder map[string]*subscription // by Graph base, mailbox and folder id
	bad    bool                     // a notification with a wrong clientState was logged
}

// subscription is one folder's; its fields under mu of Push, except that
// ensure calls for it are serialised by busy.
type subscription struct {
	c        *Client
	mailbox  string
	folderID string
	state    string // clientState: a random secret Graph echoes in every notification
	wake     chan struct{}
	busy     chan struct{} // held while one ensure runs

	id      string
	expires time.Time
	renew   bool  // Graph asked for reauthorization
	failed  error // why the last subscribe failed, logged once
}

// NewPush returns a Push whose subscriptions name notificationURL, the
// public https URL that reaches Handler; it does no I/O.
func NewPush(notificationURL string, log *slog.Logger) *Push {
	if log == nil {
		log = slog.Default()
	}
	return &Push{url: notificationURL, log: log.With("component", "graph-push"), byID: map[string]*subscription{}, folder: map[string]*subscription{}}
}

// URL is the notification URL subscriptions are made with.
func (p *Push) URL() string { return p.url }

// watch returns the subscription of mailbox's folder, made on first use
// (not yet created at Graph: see ensure).
func (p *Push) watch(c *Client, mailbox, folderID string) *subscription {
	key := c.base + "\x00" + mailbox + "\x00" + folderID
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.folder[key]; s != nil {
		return s
	}
	s := &subscription{c: c, mailbox: mailbox, folderID: folderID, state: secret(), wake: make(chan struct{}, 1), busy: make(chan struct{}, 1)}
	p.folder[key] = s
	return s
}

// secret is 32 random bytes in hex: a clientState.
func secret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ensure creates s at Graph, or renews it when less than half its
// lifetime is left or Graph asked for reauthorization. Creating it runs
// Graph's validation handshake against Handler.
func (p *Push) ensure(ctx context.Context, s *subscription) error {
	select {
	case s.busy <- struct{}{}:
		defer func() { <-s.busy }()
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	id, expires, renew := s.id, s.expires, s.renew
	p.mu.Unlock()
	now := time.Now()
	if id != "" && !renew && expires.Sub(now) > subLifetime/2 {
		return nil
	}
	until := now.Add(subLifetime).UTC().Truncate(time.Second)
	if id != "" {
		var out struct {
			Expiration time.Time `json:"expirationDateTime"`
		}
		err := s.c.getJSON(ctx, request{method: http.MethodPatch, url: "/subscriptions/" + url.PathEscape(id), mailbox: s.mailbox, op: "renew subscription",
			body: map[string]any{"expirationDateTime": until.Format(time.RFC3339)}}, &out)
		if err == nil {
			p.mu.Lock()
			s.expires, s.renew = expiry(out.Expiration, until), false
			p.mu.Unlock()
			p.log.Debug("subscription renewed", "mailbox", s.mailbox, "subscription", id, "expires", s.expires)
			return nil
		}
		if !isNotFound(err) {
			return err
		}
		p.log.Info("subscription gone at Graph, subscribing again", "mailbox", s.mailbox, "subscription", id)
		p.forget(s, id)
	}
	var out struct {
		ID         string    `json:"id"`
		Expiration time.Time `json:"expirationDateTime"`
	}
	err := s.c.getJSON(ctx, request{method: http.MethodPost, url: "/subscriptions", mailbox: s.mailbox, op: "subscribe", body: map[string]any{
		"changeType":               "created",
		"notificationUrl":          p.url,
		"lifecycleNotificationUrl": p.url,
		"resource":                 "users/" + url.PathEscape(s.mailbox) + "/mailFolders/" + url.PathEscape(s.folderID) + "/messages",
		"expirationDateTime":       until.Format(time.RFC3339),
		"clientState":              s.state,
	}}, &out)
	if err != nil {
		return err
	}
	if out.ID == "" {
		return fmt.Errorf("graph subscribe %s: the answer has no subscription id", s.mailbox)
	}
	p.mu.Lock()
	s.id, s.expires, s.renew = out.ID, expiry(out.Expiration, until), false
	p.byID[out.ID] = s
	p.mu.Unlock()
	p.log.Info("subscribed to new mail", "mailbox", s.mailbox, "subscription", out.ID, "expires", s.expires)
	return nil
}

// expiry is the expiration Graph answered, or asked when it gave none.
func expiry(got, asked time.Time) time.Time {
	if got.IsZero() {
		return asked
	}
	return got
}

// forget drops s's subscription id, when Graph no longer has it.
func (p *Push) forget(s *subscription, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.id == id {
		s.id = ""
	}
	delete(p.byID, id)
}

// ServeHTTP answers Graph at NotificationsPath: the validation handshake
// (echo validationToken as text/plain), and notifications and lifecycle
// events, which are acknowledged with 202 at once and only wake the
// folder they name. A notification whose clientState is not its
// subscription's is dropped.
func (p *Push) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if tok, ok := r.URL.Query()["validationToken"]; ok && len(tok) == 1 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, tok[0])
		return
	}
	var body struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
			ClientState    string `json:"clientState"`
			LifecycleEvent string `json:"lifecycleEvent"`
		} `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxNotification)).Decode(&body); err != nil {
		http.Error(w, "not a notification", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	for _, n := range body.Value {
		p.notified(n.SubscriptionID, n.ClientState, n.LifecycleEvent)
	}
}

// notified handles one notification.
func (p *Push) notified(id, state, lifecycle string) {
	p.mu.Lock()
	s := p.byID[id]
	if s == nil {
		p.mu.Unlock()
		p.log.Debug("notification for an unknown subscription", "subscription", id)
		return
	}
	if subtle.ConstantTimeCompare([]byte(state), []byte(s.state)) != 1 {
		logIt := !p.bad
		p.bad = true
		p.mu.Unlock()
		if logIt {
			p.log.Warn("dropped a notification whose clientState is not its subscription's (not from Graph, or from an old subscription); logged once",
				"subscription", id, "mailbox", s.mailbox)
		}
		return
	}
	switch lifecycle {
	case "reauthorizationRequired":
		s.renew = true
	case "subscriptionRemoved":
		if s.id == id {
			s.id = ""
		}
		delete(p.byID, id)
	}
	p.mu.Unlock()
	if lifecycle != "" {
		p.log.Info("lifecycle notification", "mailbox", s.mailbox, "subscription", id, "event", lifecycle)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close deletes every subscription at Graph, so that none outlives the
// process; ctx bounds it.
func (p *Push) Close(ctx context.Context) error {
	p.mu.Lock()
	subs := make([]*subscription, 0, len(p.byID))
	for _, s := range p.byID {
		subs = append(subs, s)
	}
	p.byID = map[string]*subscription{}
	p.mu.Unlock()
	var errs []error
	for _, s := range subs {
		p.mu.Lock()
		id := s.id
		s.id = ""
		p.mu.Unlock()
		if id == "" {
			continue
		}
		resp, err := s.c.do(ctx, request{method: http.MethodDelete, url: "/subscriptions/" + url.PathEscape(id), mailbox: s.mailbox, op: "unsubscribe"})
		if err == nil {
			resp.Body.Close()
		} else if !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// wait subscribes s if needed and returns when a notification for it
// arrives, max passes or ctx ends. A failure to subscribe is logged once
// (and again when it changes or heals) and then the wait is a plain
// sleep: the poll at max stays the safety net.
func (p *Push) wait(ctx context.Context, s *subscription, max time.Duration) {
	err := p.ensure(ctx, s)
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	prev := s.failed
	s.failed = err
	p.mu.Unlock()
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		p.log.Warn("cannot subscribe to new mail; polling at poll_interval instead", "mailbox", s.mailbox, "retry_in", max, "err", err)
	case err == nil && prev != nil:
		p.log.Info("subscribed again after a failure", "mailbox", s.mailbox)
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-s.wake:
	case <-t.C:
	case <-ctx.Done():
	}
}

// isNotFound reports a 404 answer: a subscription Graph no longer has.
func isNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
