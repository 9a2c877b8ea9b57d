package imap

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/internal/redact"
	"github.com/mailpoller/mailpoller/source"
)

// ErrAuthFailed means the server refused the XOAUTH2 token. With Exchange
// Online this is "NO AUTHENTICATE failed.": the app lacks IMAP.AccessAsApp
// (or its admin consent), its service principal is not registered in
// Exchange, or it has no FullAccess on the mailbox. It wraps
// source.ErrPermanent: retrying soon does not help.
var ErrAuthFailed error = &fixable{source.Permanent(errors.New("the server refused the XOAUTH2 token")), authFix}

// ErrNotConnected is Exchange's "User is authenticated but not connected.":
// a missing mailbox permission, or a burst of reconnects. Retry slowly.
var ErrNotConnected error = &fixable{errors.New("server says user is authenticated but not connected"), func(a source.Admin) string {
	return "Exchange accepted the token but will not open the mailbox: grant the service principal FullAccess on it " +
		"(Add-MailboxPermission -Identity " + or(a.Mailbox, "<mailbox>") + " -User " + or(a.ObjectID, "<service principal object id>") +
		" -AccessRights FullAccess), or wait if many connections were opened in a short time."
}}

// fixable is an error that knows its admin fix (source.Fixer).
type fixable struct {
	err error
	fix func(source.Admin) string
}

func (e *fixable) Error() string             { return e.err.Error() }
func (e *fixable) Unwrap() error             { return e.err }
func (e *fixable) Fix(a source.Admin) string { return e.fix(a) }

// or is v, or placeholder when v is empty.
func or(v, placeholder string) string {
	if v == "" {
		return placeholder
	}
	return v
}

// authFix spells out the Exchange Online steps for a refused XOAUTH2
// token, with a's ids filled in where known.
func authFix(a source.Admin) string {
	oid := or(a.ObjectID, "<Enterprise application Object ID>")
	return strings.Join([]string{
		"Exchange refused the app for this mailbox. Check that the app registration has the application permission " +
			"IMAP.AccessAsApp on \"Office 365 Exchange Online\" with admin consent granted, then in Exchange Online PowerShell:",
		"  Connect-ExchangeOnline -Organization " + or(a.TenantID, "<tenant id>"),
		"  New-ServicePrincipal -AppId " + or(a.ClientID, "<client id>") + " -ObjectId " + oid + " -DisplayName \"mailpoller " + or(a.Account, "<account>") + "\"",
		"  Add-MailboxPermission -Identity " + or(a.Mailbox, "<mailbox>") + " -User " + oid + " -AccessRights FullAccess",
		"The ObjectId is the Enterprise application's (service principal's) Object ID, not the app registration's; " +
			"it is the token's oid claim (`mailpoller check` shows it). Repeat Add-MailboxPermission for every additional user.",
	}, "\n")
}

// ThrottledError is Exchange's "BAD Request is throttled. Suggested Backoff
// Time: N milliseconds". Callers wait Backoff before the next command.
// Backoff is the server's suggestion clamped to [MinBackoff, MaxBackoff]:
// 0 would make a login storm, 1e20 overflows a duration.
type ThrottledError struct {
	Backoff   time.Duration
	Suggested string // what the server suggested, e.g. "300ms"
	Text      string // the server's text, scrubbed of credentials
}

// RetryAfter implements source.Throttled.
func (e *ThrottledError) RetryAfter() (time.Duration, bool) { return e.Backoff, true }

// The range a server's suggested backoff is clamped to.
const (
	MinBackoff = time.Second
	MaxBackoff = 15 * time.Minute
)

func (e *ThrottledError) Error() string {
	if e.Suggested == "" || e.Suggested == e.Backoff.String() {
		return fmt.Sprintf("server throttled the request, suggested backoff %s", e.Backoff)
	}
	return fmt.Sprintf("server throttled the request, suggested backoff %s, waiting %s", e.Suggested, e.Backoff)
}

var backoffRE = regexp.MustCompile(`(?i)Suggested Backoff Time:\s*(\d+)\s*milliseconds`)

// throttled parses the milliseconds of a throttling reply into a wait in
// [MinBackoff, MaxBackoff], whatever their size.
func throttled(digits, text string) *ThrottledError {
	e := &ThrottledError{Backoff: MaxBackoff, Suggested: digits + "ms", Text: text}
	ms, err := strconv.ParseUint(digits, 10, 64)
	if err == nil && ms <= uint64(math.MaxInt64/time.Millisecond) {
		e.Suggested = (time.Duration(ms) * time.Millisecond).String()
	}
	if err == nil && ms <= uint64(MaxBackoff/time.Millisecond) {
		e.Backoff = max(time.Duration(ms)*time.Millisecond, MinBackoff)
	}
	return e
}

// classify turns server replies into the package's typed errors. Server
// text is scrubbed of anything credential-shaped (an echoed XOAUTH2
// initial response, a Bearer value): the result goes into logs and
// /status.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ie *goimap.Error
	if !errors.As(err, &ie) {
		return scrub(err)
	}
	text := redact.Secrets(ie.Text)
	if m := backoffRE.FindStringSubmatch(ie.Text); m != nil {
		return throttled(m[1], text)
	}
	if strings.Contains(strings.ToLower(ie.Text), "authenticated but not connected") {
		return fmt.Errorf("%w: %s", ErrNotConnected, text)
	}
	return &goimap.Error{Type: ie.Type, Code: ie.Code, Text: text}
}

// scrubbed is an error whose text went through redact.Secrets; it still
// unwraps to the original for errors.Is (net.ErrClosed, io.EOF).
type scrubbed struct {
	text string
	err  error
}

func (e *scrubbed) Error() string { return e.text }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub returns err with its text scrubbed, unchanged if it had nothing to
// scrub. go-imap's own errors quote server bytes ("unsupported response
// type %q").
func scrub(err error) error {
	s := err.Error()
	if r := redact.Secrets(s); r != s {
		return &scrubbed{text: r, err: err}
	}
	return err
}
