package source

import (
	"context"
	"log/slog"
	"time"
)

// Transport is one protocol's way into the mailboxes of one account (one
// app registration): IMAP, EWS, Graph. The poller makes one value
// per account and shares it between that account's mailboxes, so a
// Transport is safe for concurrent use; what it shares (an HTTP client, a
// limit of requests in flight) it owns.
type Transport interface {
	// Scope is the OAuth scope of the tokens the transport asks Tokens
	// for, e.g. https://outlook.office365.com/.default.
	Scope() string
	// Role is the application role the app needs on that resource, e.g.
	// IMAP.AccessAsApp; check looks for it in the token's roles claim.
	Role() string
	// Open connects to mb and returns its Source. ctx bounds connecting
	// only; the Source lives until Close. mb has its defaults applied and
	// is valid.
	Open(ctx context.Context, mb Mailbox, log *slog.Logger) (Source, error)
	// Probe checks mb for `mailpoller check` and changes nothing on the
	// server: it connects, authenticates, opens the folder read-only,
	// counts, and looks for the move_to folder.
	Probe(ctx context.Context, mb Mailbox) (Probe, error)
}

// Probe is what Transport.Probe learned about a mailbox.
type Probe struct {
	Messages     int
	Unread       int
	MoveToExists *bool // nil when there is no move_to folder to look for
}

// Tokens hands a transport app-only tokens for its account, one cache
// per (app, scope, cloud): one token request per app, scope and lifetime.
type Tokens interface {
	// Token returns a token for scope and when it expires.
	Token(ctx context.Context, scope string) (value string, expiry time.Time, err error)
	// Invalidate drops value from the cache if it is still the cached
	// token for scope: the server refused it. The next Token asks anew.
	Invalidate(scope, value string)
}

// Throttled is implemented by transport errors that may carry the wait a
// server asked for (IMAP's Suggested Backoff Time, EWS's
// BackOffMilliseconds): ok says whether it asked. The poller finds it
// with errors.As and waits at least that long, clamped to a sane range
// whatever the server said.
type Throttled interface {
	error
	RetryAfter() (wait time.Duration, ok bool)
}

// Admin names the ids a fix text fills in; any may be empty when the
// caller does not know it.
type Admin struct {
	Account  string // the config's account name
	TenantID string
	ClientID string
	ObjectID string // the service principal's object id (the token's oid claim)
	Mailbox  string
}

// Fixer is implemented by transport errors that only an admin can fix:
// Fix says what to do, in plain words, with a's ids filled in. The poller
// logs it and check prints it; they find it with errors.As.
type Fixer interface {
	error
	Fix(a Admin) string
}
