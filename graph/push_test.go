package graph

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/source"
)

// pushEnv is the simulator plus a Push served on loopback, where the
// simulator posts its notifications.
type pushEnv struct {
	*env
	push *Push
	tr   *Transport
}

func newPushEnv(t *testing.T) *pushEnv {
	t.Helper()
	e := newEnv(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p := NewPush(srv.URL+NotificationsPath, nil)
	mux.Handle(NotificationsPath, p)
	tk := &tokens{src: map[string]*auth.Source{}, hc: e.hc,
		c: auth.Credentials{Authority: e.sim.Endpoints().Authority, TenantID: tenant, ClientID: writer, ClientSecret: "s1"}}
	tr := NewTransport(Options{URL: e.sim.Endpoints().Graph, HTTPClient: e.hc, Push: p}, tk)
	return &pushEnv{env: e, push: p, tr: tr}
}

// subscribed opens mbox and subscribes its Inbox; the source is closed
// when the test ends.
func (e *pushEnv) subscribed(t *testing.T) (source.Source, *subscription) {
	t.Helper()
	src, err := e.tr.Open(context.Background(), source.Mailbox{Address: mbox}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	s := src.(*Source)
	sub := e.push.watch(s.c, mbox, s.folder.ID)
	if err := e.push.ensure(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	return src, sub
}

// waitFor runs src.Wait with a long max in the background; the returned
// channel is closed when it returns.
func waitFor(src source.Source, max time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.(source.Waiter).Wait(context.Background(), max)
	}()
	return done
}

// within fails unless done is closed before the deadline, which is far
// below the wait's own max: only a notification can end it that early.
func within(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: Wait did not return", what)
	}
}

// TestPushWakesWait: the first Wait subscribes the folder (the validation
// handshake runs against Push), and a message delivered afterwards ends the
// Wait at once, long before its max; the next poll finds the message.
func TestPushWakesWait(t *testing.T) {
	e := newPushEnv(t)
	src, err := e.tr.Open(context.Background(), source.Mailbox{Address: mbox}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, state := poll(t, src, nil)
	done := waitFor(src, time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for len(e.sim.Graph().Subscriptions(mbox)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no subscription was made")
		}
		select {
		case <-done:
			t.Fatal("Wait returned before any mail")
		case <-time.After(10 * time.Millisecond):
		}
	}
	subs := e.sim.Graph().Subscriptions(mbox)
	if !strings.Contains(subs[0].Resource, "/messages") || subs[0].NotificationURL != e.push.URL() {
		t.Errorf("subscription = %+v", subs[0])
	}
	if left := time.Until(subs[0].Expiration); left < 71*time.Hour || left > 73*time.Hour {
		t.Errorf("subscription expires in %s, want about 72h", left)
	}
	deliver(t, e.env, mbox, 1, 1)
	within(t, done, "after new mail")
	items, _ := poll(t, src, state)
	if len(items) != 1 {
		t.Fatalf("poll after the notification: %d items, want 1", len(items))
	}
	if n := e.sim.Graph().Count(mbox, "subscribe"); n != 1 {
		t.Errorf("%d subscribe requests, want 1", n)
	}
	// Another Wait reuses the subscription.
	done = waitFor(src, time.Hour)
	deliver(t, e.env, mbox, 2, 1)
	within(t, done, "second message")
	if n := e.sim.Graph().Count(mbox, "subscribe") + e.sim.Graph().Count(mbox, "renew"); n != 1 {
		t.Errorf("%d subscribe and renew requests after two waits, want 1", n)
	}
	if err := e.push.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if subs := e.sim.Graph().Subscriptions(mbox); len(subs) != 0 || e.sim.Graph().Count(mbox, "unsubscribe") != 1 {
		t.Errorf("after Close: %d subscriptions, %d deletes", len(subs), e.sim.Graph().Count(mbox, "unsubscribe"))
	}
}

// TestPushLifecycle: subscriptionRemoved wakes the folder and the next
// Wait subscribes again; reauthorizationRequired makes the next Wait renew;
// a subscription near its end is renewed, and one Graph lost is made anew.
func TestPushLifecycle(t *testing.T) {
	e := newPushEnv(t)
	src, sub := e.subscribed(t)
	ctx := context.Background()
	first := sub.id

	done := waitFor(src, time.Hour)
	if err := e.sim.Graph().Lifecycle(first, "subscriptionRemoved"); err != nil {
		t.Fatal(err)
	}
	within(t, done, "subscriptionRemoved")
	if err := e.push.ensure(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if sub.id == first || sub.id == "" || e.sim.Graph().Count(mbox, "subscribe") != 2 {
		t.Fatalf("after subscriptionRemoved: id %q (was %q), %d subscribes", sub.id, first, e.sim.Graph().Count(mbox, "subscribe"))
	}

	done = waitFor(src, time.Hour)
	if err := e.sim.Graph().Lifecycle(sub.id, "reauthorizationRequired"); err != nil {
		t.Fatal(err)
	}
	within(t, done, "reauthorizationRequired")
	if err := e.push.ensure(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.Graph().Count(mbox, "renew"); n != 1 {
		t.Fatalf("after reauthorizationRequired: %d renewals, want 1", n)
	}

	// Less than half the lifetime left: renewed.
	e.push.mu.Lock()
	sub.expires = time.Now().Add(subLifetime/2 - time.Minute)
	e.push.mu.Unlock()
	if err := e.push.ensure(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.Graph().Count(mbox, "renew"); n != 2 || time.Until(sub.expires) < subLifetime-time.Hour {
		t.Fatalf("near its end: %d renewals, expires in %s", n, time.Until(sub.expires))
	}

	// Gone at Graph (deleted behind our back): the renewal's 404 makes a new one.
	live := e.sim.Graph().Subscriptions(mbox)
	if len(live) != 1 {
		t.Fatalf("%d live subscriptions, want 1", len(live))
	}
	if err := e.sim.Graph().Lifecycle(live[0].ID, "subscriptionRemoved"); err != nil {
		t.Fatal(err)
	}
	e.push.mu.Lock()
	sub.renew, sub.id = true, live[0].ID // as if the removal notice were lost
	e.push.byID[live[0].ID] = sub
	e.push.mu.Unlock()
	if err := e.push.ensure(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Graph().Subscriptions(mbox); len(got) != 1 || got[0].ID != sub.id {
		t.Fatalf("after a lost subscription: %+v, ours %q", got, sub.id)
	}
}

// TestPushChecksClientState: a notification for a known subscription with
// another clientState wakes nothing; the right one does. Validation echoes
// the token as text/plain.
func TestPushChecksClientState(t *testing.T) {
	e := newPushEnv(t)
	_, sub := e.subscribed(t)
	post := func(body string) int {
		t.Helper()
		rec := httptest.NewRecorder()
		e.push.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, NotificationsPath, strings.NewReader(body)))
		return rec.Code
	}
	if code := post(`{"value":[{"subscriptionId":"` + sub.id + `","clientState":"forged","changeType":"created"}]}`); code != http.StatusAccepted {
		t.Errorf("forged notification answered %d, want 202", code)
	}
	select {
	case <-sub.wake:
		t.Fatal("a notification with a wrong clientState woke the folder")
	default:
	}
	if code := post(`{"value":[{"subscriptionId":"` + sub.id + `","clientState":"` + sub.state + `","changeType":"created"}]}`); code != http.StatusAccepted {
		t.Errorf("notification answered %d, want 202", code)
	}
	select {
	case <-sub.wake:
	default:
		t.Fatal("a notification with the right clientState did not wake the folder")
	}
	if code := post("not json"); code != http.StatusBadRequest {
		t.Errorf("garbage answered %d, want 400", code)
	}

	rec := httptest.NewRecorder()
	e.push.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, NotificationsPath+"?validationToken=Validation%3A+abc+123", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || !bytes.Equal(body, []byte("Validation: abc 123")) {
		t.Errorf("validation: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), body)
	}
}

// TestPushRefusedFallsBackToPolling: when Graph cannot reach the
// notification URL (the validation fails), Wait still returns at its max,
// so the poll goes on.
func TestPushRefusedFallsBackToPolling(t *testing.T) {
	e := newEnv(t)
	p := NewPush("http://127.0.0.1:1/graph/notifications", nil) // nothing listens there
	tk := &tokens{src: map[string]*auth.Source{}, hc: e.hc,
		c: auth.Credentials{Authority: e.sim.Endpoints().Authority, TenantID: tenant, ClientID: writer, ClientSecret: "s1"}}
	tr := NewTransport(Options{URL: e.sim.Endpoints().Graph, HTTPClient: e.hc, Push: p}, tk)
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.(source.Waiter).Wait(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatalf("Wait = %v, want nil (polling goes on)", err)
	}
	s := src.(*Source)
	sub := p.watch(s.c, mbox, s.folder.ID)
	if sub.failed == nil || !strings.Contains(sub.failed.Error(), "validation") {
		t.Errorf("failure kept = %v, want the validation error", sub.failed)
	}
	if len(e.sim.Graph().Subscriptions(mbox)) != 0 {
		t.Error("a subscription exists although validation failed")
	}
}

// TestValidateNotificationURL: Push's own answer passes Graph's handshake;
// answers Graph would refuse come back as a HandshakeError.
func TestValidateNotificationURL(t *testing.T) {
	echo := func(ct string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			io.WriteString(w, r.URL.Query().Get("validationToken"))
		}
	}
	for _, c := range []struct {
		name string
		h    http.Handler
		ok   bool
	}{
		{"push", NewPush("", nil), true},
		{"echo as JSON", echo("application/json"), false},
		{"empty 200", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), false},
		{"302 to a login page", http.RedirectHandler("/login", http.StatusFound), false},
	} {
		srv := httptest.NewServer(c.h)
		_, err := ValidateNotificationURL(context.Background(), srv.Client(), srv.URL+NotificationsPath+"?tenant=a")
		srv.Close()
		var he *HandshakeError
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && !errors.As(err, &he):
			t.Errorf("%s: %v, want a HandshakeError", c.name, err)
		}
	}
}
