package source

import (
	"fmt"
	"strings"
	"time"
)

// StartFrom decides what a folder without a checkpoint publishes first.
type StartFrom string

// The start_from values.
const (
	StartUnread StartFrom = "unread" // the unread messages, then everything new
	StartAll    StartFrom = "all"    // every message in the folder
	StartNow    StartFrom = "now"    // nothing already there, only new mail
)

// AfterRead is what is done on the server to a message once its event is
// acknowledged.
type AfterRead string

// The after_read values.
const (
	MarkRead AfterRead = "mark_read"
	Move     AfterRead = "move"
	Delete   AfterRead = "delete"
	None     AfterRead = "none"
)

// StoreRaw decides when the original message (.eml) is kept as a blob in
// the object store, with a raw reference in its event.
type StoreRaw string

// The store_raw values.
const (
	RawAlways     StoreRaw = "always"      // every message
	RawOnProblems StoreRaw = "on_problems" // only when the parser reported problems (too_large included)
	RawNever      StoreRaw = "never"       // none: events carry no raw reference
)

// Defaults of Mailbox, applied by WithDefaults (config applies the same).
const (
	DefaultFolder          = "INBOX"
	DefaultStartFrom       = StartUnread
	DefaultAfterRead       = MarkRead
	DefaultPollInterval    = 60 * time.Second
	DefaultMaxMessageBytes = 50 << 20
	DefaultStoreRaw        = RawAlways
)

// Mailbox is one folder of one mailbox and how to read it: what every
// transport needs, whatever its protocol. config fills it from the file;
// transports take it as it is.
type Mailbox struct {
	Address         string        // lower-cased SMTP address
	Folder          string        // default INBOX
	StartFrom       StartFrom     // first run without a checkpoint; default unread
	AfterRead       AfterRead     // default mark_read
	MoveTo          string        // folder for AfterRead Move
	Quarantine      string        // folder for dead-lettered mail; "" leaves it in place
	MaxMessageBytes int64         // larger mail becomes a too_large event with its header; 0: the transport's cap
	PollInterval    time.Duration // default 60s
	StoreRaw        StoreRaw      // when the .eml is stored as a blob; default always
}

// WithDefaults returns m with every zero field set to its default.
func (m Mailbox) WithDefaults() Mailbox {
	if m.Folder == "" {
		m.Folder = DefaultFolder
	}
	if m.StartFrom == "" {
		m.StartFrom = DefaultStartFrom
	}
	if m.AfterRead == "" {
		m.AfterRead = DefaultAfterRead
	}
	if m.PollInterval <= 0 {
		m.PollInterval = DefaultPollInterval
	}
	if m.StoreRaw == "" {
		m.StoreRaw = DefaultStoreRaw
	}
	return m
}

// Validate reports the first field of m that no transport can work with.
// Its errors match ErrPermanent.
func (m Mailbox) Validate() error {
	bad := func(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }
	switch {
	case !strings.Contains(m.Address, "@"):
		return bad("mailbox %q is not an SMTP address", m.Address)
	case !m.StartFrom.Valid():
		return bad("start_from %q: use unread, all or now", m.StartFrom)
	case !m.AfterRead.Valid():
		return bad("after_read %q: use mark_read, move, delete or none", m.AfterRead)
	case m.AfterRead == Move && strings.TrimSpace(m.MoveTo) == "":
		return bad("after_read move needs move_to: name the folder to move handled mail to")
	case m.StoreRaw != "" && !m.StoreRaw.Valid():
		return bad("store_raw %q: use always, on_problems or never", m.StoreRaw)
	case m.MaxMessageBytes < 0:
		return bad("max_message_bytes %d is negative", m.MaxMessageBytes)
	}
	return nil
}

// Valid reports whether s is one of the start_from values.
func (s StartFrom) Valid() bool { return s == StartUnread || s == StartAll || s == StartNow }

// Valid reports whether a is one of the after_read values.
func (a AfterRead) Valid() bool { return a == MarkRead || a == Move || a == Delete || a == None }

// Valid reports whether s is one of the store_raw values.
func (s StoreRaw) Valid() bool { return s == RawAlways || s == RawOnProblems || s == RawNever }

// Keep reports whether a message whose parse reported the given number of
// problems has its raw .eml stored. The empty StoreRaw is the default,
// always.
func (s StoreRaw) Keep(problems int) bool {
	switch s {
	case RawNever:
		return false
	case RawOnProblems:
		return problems > 0
	}
	return true
}
