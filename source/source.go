// Package source is the contract between a mail transport (imap, ews) and
// the poller. A Transport is one protocol's way into one account's
// mailboxes: it names the token scope and Exchange role it needs, opens a
// Source for a Mailbox, and probes one for `mailpoller check`. A Source
// reads one folder of one mailbox and hands new messages over in batches,
// each with the checkpoint to save once the batch is handled. Transport
// errors say how long to wait (Throttled) and what an admin must fix
// (Fixer); the poller finds both with errors.As.
//
// The order is fixed and is what makes "nothing lost" true: the poller
// publishes every message of a batch and waits for its PubAck, then calls
// AfterRead, then saves Batch.State. A crash at any point replays from the
// last saved state.
package source

import (
	"context"
	"errors"
	"time"
)

// Source reads new mail from one folder of one mailbox. Its owner (the
// poller's mailbox loop) calls Poll, Wait and Close, never two at once.
// While Poll runs, the owner may call AfterRead and Quarantiner.Quarantine
// from one other goroutine, for a batch Poll has already handed over: the
// poller commits batch n (publish, after-read, checkpoint) while Poll
// fetches batch n+1. So a Source must let AfterRead and Quarantine run
// beside Poll (IMAP pipelines them on its one connection; EWS sends
// separate requests); Close may come from any goroutine, at any time (a
// stall watchdog ends a hung Poll with it), and makes the call in progress
// return an error.
type Source interface {
	// Poll finds the messages that are new since state (nil: no checkpoint
	// yet, so the mailbox's start_from decides) and calls handle with them in
	// batches, oldest first. Poll returns the first error handle returns, or
	// an error of the transport. A batch with no messages may still carry a
	// new State (EWS sync states advance on changes we ignore).
	Poll(ctx context.Context, state []byte, handle func(context.Context, Batch) error) error

	// AfterRead applies the configured after-read action (mark read, move,
	// delete, none) to items that have been published and acknowledged.
	AfterRead(ctx context.Context, items []Item) error

	// Close ends the connection. It is safe to call more than once.
	Close() error
}

// Batch is a run of new messages and the checkpoint that covers them.
type Batch struct {
	Items []Item
	// State is the opaque checkpoint to store once every item is handled.
	// Nil means "no change".
	State []byte
}

// Item is one message as the server returned it.
type Item struct {
	// ServerID is the server's stable id: "<uidvalidity>:<uid>" for IMAP, the
	// ItemId for EWS. With account, mailbox and folder it makes the event id.
	ServerID string
	// UID is the IMAP UID (0 for EWS).
	UID uint32
	// Raw is the RFC 5322 message. It is nil when Err is set.
	Raw []byte
	// Size is the server's size of the message (may exceed len(Raw) when the
	// message was too large to fetch whole).
	Size int64
	// Received is when the server received the message (INTERNALDATE or
	// DateTimeReceived); zero if unknown.
	Received time.Time
	// Truncated is true when Raw holds only the header because the message
	// is larger than max_message_bytes.
	Truncated bool
	// Err is set when the server could not return this message (IMAP FETCH
	// NO, EWS ErrorItemNotFound); the poller dead-letters it.
	Err error
}

// ErrPermanent marks errors that retrying will not fix (bad credentials,
// missing permission, missing folder). The poller backs off much longer and
// reports the fix instead of retrying at once. Wrap it with fmt.Errorf("%w").
var ErrPermanent = errors.New("permanent")

// ErrVanished marks an Item the server no longer has (expunged or moved
// between listing and fetching). It cannot be acted on.
var ErrVanished = errors.New("the message is gone from the server")

// ErrReconnect asks the poller to close the source and open a new one at
// once, without counting a failure (for example, the access token the
// connection authenticated with is about to expire).
var ErrReconnect = errors.New("reconnect requested")

// ErrMisconfigured marks a failure that points at a wrong setting (the
// server URL names no endpoint, say) rather than at a passing outage:
// `run --once` does not spend its retry budget on it. Transports match it
// with an Is method.
var ErrMisconfigured = errors.New("misconfigured")

// Waiter is implemented by sources that can be told of new mail by the
// server (IMAP IDLE, EWS streaming notifications). The poller then waits
// with Wait instead of sleeping for the poll interval.
type Waiter interface {
	// Wait returns nil when the server signals a change in the folder or
	// when max has passed, whichever comes first; an error means the
	// connection is no longer usable.
	Wait(ctx context.Context, max time.Duration) error
}

// Permanent marks err as one that retrying will not fix, without changing
// its text: errors.Is(Permanent(err), ErrPermanent) is true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

type permanent struct{ err error }

func (p permanent) Error() string   { return p.err.Error() }
func (p permanent) Unwrap() []error { return []error{p.err, ErrPermanent} }

// Quarantiner is implemented by sources that can move messages aside on
// the server (the quarantine option): the poller calls it for messages it
// sent to the dead-letter subject.
type Quarantiner interface {
	Quarantine(ctx context.Context, items []Item, folder string) error
}
