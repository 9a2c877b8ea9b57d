package graph

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
	"github.com/mailpoller/mailpoller/source"
)

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	writer = "22222222-2222-2222-2222-222222222222"
	reader = "44444444-4444-4444-4444-444444444444"
	mbox   = "support@contoso.test"
	other  = "billing@contoso.test"
)

// tokens is source.Tokens over auth.Source for one app, per scope.
type tokens struct {
	mu  sync.Mutex
	src map[string]*auth.Source
	c   auth.Credentials
	hc  *http.Client
}

func (t *tokens) get(scope string) *auth.Source {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.src[scope]; ok {
		return s
	}
	c := t.c
	c.Scope = scope
	s, err := auth.New(c, &auth.Options{HTTPClient: t.hc})
	if err != nil {
		panic(err)
	}
	t.src[scope] = s
	return s
}

func (t *tokens) Token(ctx context.Context, scope string) (string, time.Time, error) {
	tok, err := t.get(scope).Token(ctx)
	return tok.Value, tok.Expiry, err
}

func (t *tokens) Invalidate(scope, value string) { t.get(scope).Invalidate(auth.Token{Value: value}) }

type env struct {
	sim *sim.Sim
	hc  *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	minWait = 10 * time.Millisecond
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []sim.App{
			{Tenant: tenant, ClientID: writer, Secret: "s1", GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}},
			{Tenant: tenant, ClientID: reader, Secret: "s2", GraphRoles: []string{"Mail.Read"}, Mailboxes: []string{mbox}},
		},
		Mailboxes: []sim.MailboxSeed{{Address: mbox, Folders: []string{"Processed", "Inbox/Processed", "Quarantine"}}, {Address: other}},
	}
	s := simtest.Start(t, seed)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}}
	return &env{sim: s, hc: hc}
}

func (e *env) transport(clientID, secret string) *Transport {
	tk := &tokens{src: map[string]*auth.Source{}, hc: e.hc,
		c: auth.Credentials{Authority: e.sim.Endpoints().Authority, TenantID: tenant, ClientID: clientID, ClientSecret: secret}}
	return NewTransport(Options{URL: e.sim.Endpoints().Graph, HTTPClient: e.hc}, tk)
}

// poll runs one Poll and returns its items and last state.
func poll(t *testing.T, src source.Source, state []byte) ([]source.Item, []byte) {
	t.Helper()
	var items []source.Item
	err := src.Poll(context.Background(), state, func(ctx context.Context, b source.Batch) error {
		items = append(items, b.Items...)
		if err := src.AfterRead(ctx, b.Items); err != nil {
			return err
		}
		if b.State != nil {
			state = b.State
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return items, state
}

func deliver(t *testing.T, e *env, mailbox string, from, n int) map[string][]byte {
	t.Helper()
	raws := map[string][]byte{}
	for i := from; i < from+n; i++ {
		raw := sim.Generate(mailbox, i)
		if _, err := e.sim.Store().Deliver(mailbox, "INBOX", raw, time.Now().Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		raws[string(raw)] = raw
	}
	return raws
}

// TestDeltaPollMarkReadAndResync reads a backlog of more than one delta
// page, marks it read in $batch requests, then only new mail, and after
// Graph forgets the delta token reads the folder again without losing
// the mail that came meanwhile.
func TestDeltaPollMarkReadAndResync(t *testing.T) {
	e := newEnv(t)
	want := deliver(t, e, mbox, 1, 130)
	tr := e.transport(writer, "s1")
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, StartFrom: source.StartAll}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	items, state := poll(t, src, nil)
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, it := range items {
		if _, ok := want[string(it.Raw)]; !ok || it.Err != nil {
			t.Fatalf("item %d (%s): not a delivered message (err %v)", i, it.ServerID, it.Err)
		}
		if i > 0 && it.Received.Before(items[i-1].Received) {
			t.Errorf("item %d received %s before item %d", i, it.Received, i-1)
		}
	}
	msgs, _ := e.sim.Store().Messages(mbox, "INBOX")
	for _, m := range msgs {
		if !m.Seen() {
			t.Errorf("UID %d not read after AfterRead", m.UID)
		}
	}
	g := e.sim.Graph()
	// Requests per message in a backlog, a $batch counting once: the
	// folder, two delta pages, one $value each, one $batch per 20.
	if n := g.Requests(mbox); n > 130*12/10 {
		t.Errorf("%d requests for 130 messages, over 1.2 per message", n)
	}
	t.Logf("%d requests for a backlog of 130 messages (%.2f per message)", g.Requests(mbox), float64(g.Requests(mbox))/130)
	if n := g.Count(mbox, "batch"); n < 7 || n > 8 {
		t.Errorf("%d $batch requests for 130 messages, want 7", n)
	}
	if mx := g.MaxInFlight(mbox); mx > MailboxInFlight {
		t.Errorf("%d requests in flight for one mailbox, Graph allows %d", mx, MailboxInFlight)
	}
	// Nothing new: one delta request, no items; our own mark-read is not new mail.
	before := g.Requests(mbox)
	items, state = poll(t, src, state)
	if len(items) != 0 || g.Requests(mbox)-before != 1 {
		t.Errorf("idle poll: %d items, %d requests; want 0 and 1", len(items), g.Requests(mbox)-before)
	}
	deliver(t, e, mbox, 200, 2)
	items, state = poll(t, src, state)
	if len(items) != 2 {
		t.Fatalf("%d new items, want 2", len(items))
	}
	g.ExpireDelta(mbox)
	deliver(t, e, mbox, 300, 1)
	items, _ = poll(t, src, state)
	// start_from all: the whole folder again, the new message with it.
	if len(items) != 133 {
		t.Errorf("after the delta token expired, %d items handed over, want all 133", len(items))
	}
}

// TestThrottlingHonoured: Graph's 429 with Retry-After is waited out
// before the next request for that mailbox, measured at the server.
func TestThrottlingHonoured(t *testing.T) {
	e := newEnv(t)
	deliver(t, e, mbox, 1, 3)
	tr := e.transport(writer, "s1")
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, StartFrom: source.StartAll}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	e.sim.Graph().Throttle(mbox, 2, time.Second)
	items, _ := poll(t, src, nil)
	if len(items) != 3 {
		t.Fatalf("%d items, want 3", len(items))
	}
	evs := e.sim.Graph().Throttled(mbox)
	if len(evs) != 2 {
		t.Fatalf("%d throttled answers, want 2", len(evs))
	}
	for _, ev := range evs {
		if gap := ev.NextArrival.Sub(ev.Sent); gap < ev.RetryAfter {
			t.Errorf("next request %s after a 429 with Retry-After %s", gap, ev.RetryAfter)
		}
	}
}

// TestMoveToPathAndQuarantine moves handled mail to Inbox/Processed (not
// the top-level Processed) and quarantines one message.
func TestMoveToPathAndQuarantine(t *testing.T) {
	e := newEnv(t)
	deliver(t, e, mbox, 1, 3)
	tr := e.transport(writer, "s1")
	mb := source.Mailbox{Address: mbox, StartFrom: source.StartAll, AfterRead: source.Move, MoveTo: "Inbox/Processed"}
	p, err := tr.Probe(context.Background(), mb)
	if err != nil || p.Messages != 3 || p.MoveToExists == nil || !*p.MoveToExists {
		t.Fatalf("Probe = %+v, %v", p, err)
	}
	src, err := tr.Open(context.Background(), mb, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var items []source.Item
	err = src.Poll(context.Background(), nil, func(ctx context.Context, b source.Batch) error {
		items = append(items, b.Items...)
		// A quarantine folder that does not exist yet is made, level by level.
		if err := src.(source.Quarantiner).Quarantine(ctx, b.Items[:1], "Inbox/Held/Poison"); err != nil {
			return err
		}
		return src.AfterRead(ctx, b.Items[1:])
	})
	if err != nil || len(items) != 3 {
		t.Fatalf("Poll: %d items, %v", len(items), err)
	}
	count := func(folder string) int {
		m, err := e.sim.Store().Messages(mbox, folder)
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	if a, b, c, d := count("Inbox/Processed"), count("Processed"), count("Inbox/Held/Poison"), count("INBOX"); a != 2 || b != 0 || c != 1 || d != 0 {
		t.Errorf("Inbox/Processed %d, Processed %d, Inbox/Held/Poison %d, INBOX %d; want 2, 0, 1, 0", a, b, c, d)
	}
	if _, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, AfterRead: source.Move, MoveTo: "Inbox/Nowhere"}, nil); !errors.Is(err, source.ErrPermanent) {
		t.Errorf("Open with a missing move_to = %v, want a permanent error", err)
	}
}

// TestAccessDeniedExplained: a mailbox outside the app's scope, and a
// read-only app marking read, give errors that name the fix.
func TestAccessDeniedExplained(t *testing.T) {
	e := newEnv(t)
	deliver(t, e, mbox, 1, 1)
	tr := e.transport(reader, "s2")
	_, err := tr.Open(context.Background(), source.Mailbox{Address: other}, nil)
	var f source.Fixer
	if !errors.Is(err, source.ErrPermanent) || !errors.As(err, &f) {
		t.Fatalf("Open out of scope = %v, want a permanent error with a fix", err)
	}
	fix := f.Fix(source.Admin{ClientID: reader, Mailbox: other})
	for _, w := range []string{"Mail.ReadWrite", "New-ManagementRoleAssignment -App " + reader, "Test-ServicePrincipalAuthorization"} {
		if !strings.Contains(fix, w) {
			t.Errorf("fix lacks %q: %s", w, fix)
		}
	}
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, StartFrom: source.StartAll}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	err = src.Poll(context.Background(), nil, func(ctx context.Context, b source.Batch) error { return src.AfterRead(ctx, b.Items) })
	if !errors.Is(err, source.ErrPermanent) {
		t.Errorf("mark read with Mail.Read = %v, want a permanent error", err)
	}
	if _, err := tr.Open(context.Background(), source.Mailbox{Address: "nobody@contoso.test"}, nil); err == nil {
		t.Error("Open of an unknown user succeeded")
	}
}

// TestLinksStayOnServer: a checkpoint pointing at another host is not
// followed with the token.
func TestLinksStayOnServer(t *testing.T) {
	e := newEnv(t)
	tr := e.transport(writer, "s1")
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	state := []byte(fmt.Sprintf(`{"link":"https://evil.test/v1.0/users/%s/messages/delta"}`, mbox))
	err = src.Poll(context.Background(), state, func(context.Context, source.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("Poll from a foreign link = %v", err)
	}
}

// TestTooLargeKeepsHeader: a message over max_message_bytes comes with
// its header only, flagged Truncated with its real size.
func TestTooLargeKeepsHeader(t *testing.T) {
	e := newEnv(t)
	raw := []byte("From: a@b.test\r\nSubject: big\r\n\r\n" + strings.Repeat("x", 10000))
	e.sim.Store().Deliver(mbox, "INBOX", raw, time.Now())
	tr := e.transport(writer, "s1")
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, StartFrom: source.StartAll, AfterRead: source.None, MaxMessageBytes: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	items, _ := poll(t, src, nil)
	if len(items) != 1 || !items[0].Truncated || items[0].Size != int64(len(raw)) || string(items[0].Raw) != "From: a@b.test\r\nSubject: big\r\n\r\n" {
		t.Fatalf("items = %+v", items)
	}
}

// TestUnauthorizedRenewsToken: a 401 drops the refused token and the
// request goes again with a new one.
func TestUnauthorizedRenewsToken(t *testing.T) {
	e := newEnv(t)
	deliver(t, e, mbox, 1, 2)
	tr := e.transport(writer, "s1")
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, StartFrom: source.StartAll}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	before := e.sim.TokenRequests(writer)
	e.sim.Graph().Unauthorized(1)
	if items, _ := poll(t, src, nil); len(items) != 2 {
		t.Fatalf("%d items after a 401, want 2", len(items))
	}
	if n := e.sim.TokenRequests(writer) - before; n != 1 {
		t.Errorf("%d token requests after one 401, want 1", n)
	}
}

// TestBatchItemUnauthorizedRenewsToken: a $batch item refused with 401
// gets one more round with a fresh token, not a mailbox given up on.
func TestBatchItemUnauthorizedRenewsToken(t *testing.T) {
	e := newEnv(t)
	deliver(t, e, mbox, 1, 2)
	tr := e.transport(writer, "s1")
	src, err := tr.Open(context.Background(), source.Mailbox{Address: mbox, StartFrom: source.StartAll, AfterRead: source.MarkRead}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	before := e.sim.TokenRequests(writer)
	e.sim.Graph().UnauthorizedItems(1)
	if items, _ := poll(t, src, nil); len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	msgs, _ := e.sim.Store().Messages(mbox, "INBOX")
	for _, m := range msgs {
		if !m.Seen() {
			t.Errorf("UID %d not marked read after the refused item was sent again", m.UID)
		}
	}
	if n := e.sim.TokenRequests(writer) - before; n != 1 {
		t.Errorf("%d token requests after one refused item, want 1", n)
	}
}
