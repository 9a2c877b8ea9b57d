package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/dovecottest"
	"github.com/mailpoller/mailpoller/source"
)

// TestDovecotXOAUTH2 runs the real client against a real Dovecot: one
// app-only style token opens two mailboxes; a refused token (Dovecot sends
// a JSON error challenge first, unlike Exchange) ends as ErrAuthFailed.
func TestDovecotXOAUTH2(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{
		Users: []string{"alice@example.test", "bob@example.test"},
		Introspect: func(tok string) (string, bool) {
			return "app@example.test", tok == "good-token"
		},
	})
	srv.Append(t, "alice@example.test", "INBOX", []byte("Subject: a\r\n\r\nfor alice\r\n"))
	srv.Append(t, "bob@example.test", "INBOX", []byte("Subject: b1\r\n\r\nfor bob\r\n"))
	srv.Append(t, "bob@example.test", "INBOX", []byte("Subject: b2\r\n\r\nfor bob\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := func(user, tok string) Options {
		return Options{Addr: srv.Addr, TLSConfig: &tls.Config{RootCAs: srv.CAPool}, Mailbox: source.Mailbox{Address: user},
			Token: func(context.Context) (string, time.Time, error) { return tok, time.Now().Add(time.Hour), nil }}
	}
	for user, want := range map[string]uint32{"alice@example.test": 1, "bob@example.test": 2} {
		res, err := Probe(ctx, opts(user, "good-token"))
		if err != nil {
			t.Fatalf("Probe(%s) = %v\n%s", user, err, srv.Log())
		}
		if res.Messages != want || res.Unseen != int(want) {
			t.Errorf("Probe(%s) = %d messages, %d unseen; want %d", user, res.Messages, res.Unseen, want)
		}
	}
	_, err := Probe(ctx, opts("alice@example.test", "revoked-token"))
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Probe with a refused token = %v, want ErrAuthFailed", err)
	}
}
