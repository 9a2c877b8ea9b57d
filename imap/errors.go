package imap

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"

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
type ThrottledError struct {
	Backoff time.Duration
	Text    string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("server throttled the request, suggested backoff %s", e.Backoff)
}

var backoffRE = regexp.MustCompile(`(?i)Suggested Backoff Time:\s*(\d+)\s*milliseconds`)

// classify turns server replies into the package's typed errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ie *goimap.Error
	if !errors.As(err, &ie) {
		return err
	}
	if m := backoffRE.FindStringSubmatch(ie.Text); m != nil {
		ms, _ := strconv.Atoi(m[1])
		return &ThrottledError{Backoff: time.Duration(ms) * time.Millisecond, Text: ie.Text}
	}
	if strings.Contains(strings.ToLower(ie.Text), "authenticated but not connected") {
		return fmt.Errorf("%w: %s", ErrNotConnected, ie.Text)
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
