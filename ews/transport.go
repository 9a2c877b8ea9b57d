package ews

import (
	"context"
	"log/slog"
	"strings"

	"github.com/mailpoller/mailpoller/source"
)

// Scope is the OAuth scope of EWS tokens for Exchange Online.
const Scope = "https://outlook.office365.com/.default"

// Role is the application permission EWS needs on Office 365 Exchange
// Online.
const Role = "full_access_as_app"

// Transport reaches the mailboxes of one account over EWS, impersonating
// each (or with delegate access). Its one Client carries the account's
// limit of requests in flight. It implements source.Transport and is safe
// for concurrent use.
type Transport struct {
	c     *Client
	scope string // "" with a Login
}

// NewTransport returns the transport of one account: opts for its Client,
// whose Token and OnUnauthorized come from tokens unless opts has a Login.
// Tokens are for scope ("" means Scope: Exchange Online; hybrid modern
// auth names the on-premises resource, "https://mail.contoso.com/.default").
func NewTransport(opts Options, tokens source.Tokens, scope string) *Transport {
	if opts.Login != nil {
		return &Transport{c: NewClient(opts)}
	}
	if scope == "" {
		scope = Scope
	}
	opts.Token = func(ctx context.Context) (string, error) {
		tok, _, err := tokens.Token(ctx, scope)
		return tok, err
	}
	opts.OnUnauthorized = func(tok string) { tokens.Invalidate(scope, tok) }
	return &Transport{c: NewClient(opts), scope: scope}
}

// Client is the transport's EWS client.
func (t *Transport) Client() *Client { return t.c }

// Scope implements source.Transport: "" with a Login.
func (t *Transport) Scope() string { return t.scope }

// Role implements source.Transport: "" with a Login.
func (t *Transport) Role() string {
	if t.scope == "" {
		return ""
	}
	return Role
}

// Open implements source.Transport.
func (t *Transport) Open(ctx context.Context, mb source.Mailbox, log *slog.Logger) (source.Source, error) {
	return Open(ctx, SourceOptions{Mailbox: mb, Client: t.c, Logger: log})
}

// Probe implements source.Transport: it finds the folder, counts it with
// GetFolder and looks for the move_to folder.
func (t *Transport) Probe(ctx context.Context, mb source.Mailbox) (source.Probe, error) {
	folder := FolderID{Distinguished: "inbox"}
	if mb.Folder != "" && !strings.EqualFold(mb.Folder, "INBOX") {
		f, err := t.c.FindFolder(ctx, mb.Address, mb.Folder)
		if err != nil {
			return source.Probe{}, err
		}
		folder = f
	}
	f, err := t.c.GetFolder(ctx, mb.Address, folder)
	if err != nil {
		return source.Probe{}, err
	}
	p := source.Probe{Messages: f.TotalCount, Unread: f.UnreadCount}
	if mb.AfterRead == source.Move && mb.MoveTo != "" {
		_, err := t.c.FindFolder(ctx, mb.Address, mb.MoveTo)
		ok := err == nil
		p.MoveToExists = &ok
	}
	return p, nil
}
