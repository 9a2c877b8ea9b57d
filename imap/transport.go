package imap

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

// Scope is the OAuth scope of IMAP tokens for Exchange Online.
const Scope = "https://outlook.office365.com/.default"

// Role is the application permission IMAP needs on Office 365 Exchange
// Online.
const Role = "IMAP.AccessAsApp"

// Transport reaches the mailboxes of one account over IMAP: one
// connection per mailbox, each authenticated with XOAUTH2, or with a
// password when Password is set. It implements source.Transport and is
// safe for concurrent use.
type Transport struct {
	Addr      string      // host:port, implicit TLS unless StartTLS
	TLSConfig *tls.Config // nil: system roots; shared, never changed
	Tokens    source.Tokens
	// Username, Password and StartTLS: see Options. With a password,
	// Tokens is not used.
	Username, Password string
	StartTLS           bool
	// ReadTimeout, CommandTimeout and MaxLineBytes: see Options; 0 means
	// the defaults.
	ReadTimeout    time.Duration
	CommandTimeout time.Duration
	MaxLineBytes   int64

	once   sync.Once
	poison *poison
}

// Scope implements source.Transport: "" with a password (no token).
func (t *Transport) Scope() string {
	if t.Password != "" {
		return ""
	}
	return Scope
}

// Role implements source.Transport: "" with a password.
func (t *Transport) Role() string {
	if t.Password != "" {
		return ""
	}
	return Role
}

func (t *Transport) options(mb source.Mailbox, log *slog.Logger) Options {
	t.once.Do(func() { t.poison = newPoison() })
	return Options{poison: t.poison,
		Mailbox: mb, Addr: t.Addr, TLSConfig: t.TLSConfig, Logger: log,
		ReadTimeout: t.ReadTimeout, CommandTimeout: t.CommandTimeout, MaxLineBytes: t.MaxLineBytes,
		Username: t.Username, Password: t.Password, StartTLS: t.StartTLS,
		Token: func(ctx context.Context) (string, time.Time, error) { return t.Tokens.Token(ctx, Scope) },
	}
}

// Open implements source.Transport: ctx bounds connecting, Close ends the
// connection.
func (t *Transport) Open(ctx context.Context, mb source.Mailbox, log *slog.Logger) (source.Source, error) {
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	disarm := context.AfterFunc(ctx, end)
	s, err := Open(life, t.options(mb, log))
	disarm()
	if err != nil {
		end()
		return nil, err
	}
	return s, nil
}

// Probe implements source.Transport.
func (t *Transport) Probe(ctx context.Context, mb source.Mailbox) (source.Probe, error) {
	if mb.AfterRead != source.Move {
		mb.MoveTo = ""
	}
	res, err := Probe(ctx, t.options(mb, slog.New(slog.DiscardHandler)))
	if res == nil {
		return source.Probe{}, err
	}
	return source.Probe{Messages: int(res.Messages), Unread: res.Unseen, MoveToExists: res.MoveToExists}, err
}
