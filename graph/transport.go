package graph

import (
	"context"
	"log/slog"
	"net/url"
	"strings"

	"github.com/mailpoller/mailpoller/source"
)

// DefaultURL is Microsoft Graph v1.0 in the global cloud.
const DefaultURL = "https://graph.microsoft.com/v1.0"

// Scope is the OAuth scope of Graph tokens in the global cloud; national
// clouds use their own host (see Transport.Scope).
const Scope = "https://graph.microsoft.com/.default"

// Role is the application permission of Microsoft Graph the transport
// needs: reading mail and marking, moving or deleting it.
const Role = "Mail.ReadWrite"

// nationalHosts are the Graph hosts whose tokens have their own audience.
var nationalHosts = []string{"graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}

// Transport reaches the mailboxes of one account over Microsoft Graph with
// app-only tokens. Its one Client carries the account's limits of requests
// in flight. It implements source.Transport and is safe for concurrent
// use.
type Transport struct {
	c     *Client
	scope string
}

// NewTransport returns the transport of one account: opts for its Client,
// whose tokens come from tokens.
func NewTransport(opts Options, tokens source.Tokens) *Transport {
	scope := Scope
	if u, err := url.Parse(opts.URL); err == nil {
		for _, h := range nationalHosts {
			if strings.EqualFold(u.Hostname(), h) {
				scope = "https://" + h + "/.default"
			}
		}
	}
	opts.tokens, opts.scope = tokens, scope
	return &Transport{c: NewClient(opts), scope: scope}
}

// Scope implements source.Transport.
func (t *Transport) Scope() string { return t.scope }

// Role implements source.Transport.
func (t *Transport) Role() string { return Role }

// Open implements source.Transport.
func (t *Transport) Open(ctx context.Context, mb source.Mailbox, log *slog.Logger) (source.Source, error) {
	return Open(ctx, t.c, mb, log)
}

// Probe implements source.Transport: it resolves the folder, reads its
// counts and looks for the move_to folder, changing nothing.
func (t *Transport) Probe(ctx context.Context, mb source.Mailbox) (source.Probe, error) {
	mb = mb.WithDefaults()
	f, err := t.c.Folder(ctx, mb.Address, mb.Folder)
	if err != nil {
		return source.Probe{}, err
	}
	p := source.Probe{Messages: f.Total, Unread: f.Unread}
	if mb.AfterRead == source.Move && mb.MoveTo != "" {
		_, err := t.c.Folder(ctx, mb.Address, mb.MoveTo)
		ok := err == nil
		p.MoveToExists = &ok
	}
	return p, nil
}
