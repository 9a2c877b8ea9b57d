package imap_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/internal/hostile"
	"github.com/mailpoller/mailpoller/source"
)

// staticTokens hands out one token for the IMAP scope and records what
// was asked.
type staticTokens struct{ scopes []string }

func (s *staticTokens) Token(_ context.Context, scope string) (string, time.Time, error) {
	s.scopes = append(s.scopes, scope)
	return testToken, time.Now().Add(time.Hour), nil
}

func (s *staticTokens) Invalidate(string, string) {}

// The context of Transport.Open bounds connecting only: the source keeps
// working after it ends, until Close. Probe counts without changing
// anything.
func TestTransportOpenAndProbe(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1))
	srv.Deliver(t, "INBOX", mail(2))
	tokens := &staticTokens{}
	tr := &imap.Transport{Addr: srv.Addr, TLSConfig: srv.TLSConfig(), Tokens: tokens, ReadTimeout: 2 * time.Second}
	mb := source.Mailbox{Address: srv.Mailbox, StartFrom: source.StartAll}

	p, err := tr.Probe(testContext(t), source.Mailbox{Address: srv.Mailbox, AfterRead: source.Move, MoveTo: "Nowhere"})
	if err != nil || p.Messages != 2 || p.Unread != 2 || p.MoveToExists == nil || *p.MoveToExists {
		t.Fatalf("Probe = %+v, %v; want 2 messages, 2 unread, move_to missing", p, err)
	}
	connect, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	src, err := tr.Open(connect, mb, nil)
	cancel()
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer src.Close()
	var n int
	err = src.Poll(testContext(t), nil, func(_ context.Context, b source.Batch) error { n += len(b.Items); return nil })
	if err != nil || n != 2 {
		t.Fatalf("Poll after the connect context ended: %d items, %v; want 2, nil", n, err)
	}
	for _, s := range tokens.scopes {
		if s != imap.Scope {
			t.Errorf("asked for a token of scope %q, want %q", s, imap.Scope)
		}
	}
	for _, m := range srv.Messages(t, "INBOX") {
		if m.Has("\\Seen") {
			t.Errorf("Probe or Poll marked a message read: %+v", m)
		}
	}
}

// A server that announces a body literal too large to read at all, for
// the same message on every connection, does not block the mailbox for
// ever: the transport remembers the failed batch, fetches its messages
// one by one on the next connection, and hands the one that fails alone
// over with Err (the poller dead-letters it), the others whole.
func TestImpossibleLiteralBecomesDeadLetter(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1))
	bad := append(mail(2), "padding that gives it a size of its own\r\n"...)
	srv.Deliver(t, "INBOX", bad)
	srv.Deliver(t, "INBOX", mail(3))
	srv.Misbehave(hostile.Faults{BodyLiteral: func(n int64) int64 {
		if n == int64(len(bad)) {
			return 5 << 30 // over the 4 GiB a connection reads at all
		}
		return n
	}})
	tr := &imap.Transport{Addr: srv.Addr, TLSConfig: srv.TLSConfig(), Tokens: &staticTokens{}, ReadTimeout: 2 * time.Second}
	mb := source.Mailbox{Address: srv.Mailbox, StartFrom: source.StartAll}
	var items []source.Item
	var err error
	for try := 1; try <= 4; try++ {
		src, oerr := tr.Open(testContext(t), mb, nil)
		if oerr != nil {
			t.Fatalf("try %d: Open = %v", try, oerr)
		}
		items = nil
		err = src.Poll(testContext(t), nil, func(_ context.Context, b source.Batch) error { items = append(items, b.Items...); return nil })
		src.Close()
		if err == nil {
			t.Logf("handed over on try %d", try)
			break
		}
	}
	if err != nil {
		t.Fatalf("still failing after 4 connections: %v", err)
	}
	if len(items) != 3 {
		t.Fatalf("handed over %d items, want 3", len(items))
	}
	for i, it := range items {
		switch {
		case i == 1 && it.Err == nil:
			t.Errorf("the message with the impossible literal has no Err: %+v", it)
		case i != 1 && (it.Err != nil || len(it.Raw) == 0):
			t.Errorf("item %d: err %v, %d bytes; want it whole", i, it.Err, len(it.Raw))
		}
	}
}
