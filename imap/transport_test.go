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
