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
var ErrAuthFailed = source.Permanent(errors.New("the server refused the XOAUTH2 token"))

// ErrNotConnected is Exchange's "User is authenticated but not connected.":
// a missing mailbox permission, or a burst of reconnects. Retry slowly.
var ErrNotConnected = errors.New("server says user is authenticated but not connected")

// ThrottledError is Exchange's "BAD Request is throttled. Suggested Backoff
// Time: N milliseconds". Callers wait Backoff before the next command.
// Backoff is the server's suggestion clamped to [MinBackoff, MaxBackoff]:
// 0 would make a login storm, 1e20 overflows a duration.
type ThrottledError struct {
	Backoff   time.Duration
	Suggested string // what the server suggested, e.g. "300ms"
	Text      string // the server's text, scrubbed of credentials
}

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

// Backoff returns how long the server asked us to wait, if it did.
func Backoff(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.Backoff, true
	}
	return 0, false
}
