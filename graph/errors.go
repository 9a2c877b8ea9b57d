package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
	"github.com/mailpoller/mailpoller/internal/redact"
	"github.com/mailpoller/mailpoller/source"
)

// Error is an answer of Graph other than 2xx. errors.As finds it;
// errors.Is matches source.ErrPermanent when only an admin can fix the
// cause, and source.ErrVanished for a message that is gone.
type Error struct {
	Status  int    // HTTP status
	Code    string // Graph's error code, e.g. ErrorAccessDenied
	Message string // Graph's message, scrubbed of anything token-like
	Op      string // what was being done
	Mailbox string
	wait    time.Duration // Retry-After, clamped; 0 if none
	hasWait bool
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("graph %s %s: HTTP %d", e.Op, e.Mailbox, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.hasWait {
		s += fmt.Sprintf(" (server asks to wait %s)", e.wait)
	}
	return s
}

// Is matches source.ErrPermanent and source.ErrVanished.
func (e *Error) Is(target error) bool {
	switch target {
	case source.ErrPermanent:
		return e.permanent()
	case source.ErrVanished:
		return e.Status == http.StatusNotFound && strings.EqualFold(e.Code, "ErrorItemNotFound")
	}
	return false
}

func (e *Error) permanent() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusNotFound:
		return !strings.EqualFold(e.Code, "ErrorItemNotFound")
	}
	return false
}

// transient reports whether the same request may succeed later.
func (e *Error) transient() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryAfter implements source.Throttled: the wait Graph asked for with
// Retry-After on a 429 or 503.
func (e *Error) RetryAfter() (time.Duration, bool) {
	if !e.transient() {
		return 0, false
	}
	if e.hasWait {
		return e.wait, true
	}
	return minWait, e.Status == http.StatusTooManyRequests
}

// resync reports whether Graph no longer knows the delta token.
func (e *Error) resync() bool {
	c := strings.ToLower(e.Code)
	return e.Status == http.StatusGone || c == "syncstatenotfound" || c == "resyncrequired" || c == "syncstateinvalid"
}

// Fix implements source.Fixer for the answers only an admin can mend.
func (e *Error) Fix(a source.Admin) string {
	client, mailbox := or(a.ClientID, "<client id>"), or(a.Mailbox, or(e.Mailbox, "<mailbox>"))
	oid := or(a.ObjectID, "<object id of the app's service principal>")
	switch {
	case e.Status == http.StatusUnauthorized:
		return "Microsoft Graph refused the token: the app registration " + client + " needs the application permission " +
			"Mail.ReadWrite of Microsoft Graph with admin consent, and the token must be for https://graph.microsoft.com/.default"
	case e.Status == http.StatusForbidden && strings.Contains(strings.ToLower(e.Message), "odata is disabled"):
		return fmt.Sprintf("an application access policy keeps the app %s out of %s: add the mailbox to the policy's group "+
			"(Get-ApplicationAccessPolicy; Test-ApplicationAccessPolicy -Identity %s -AppId %s), or move to RBAC for Applications",
			client, mailbox, mailbox, client)
	case e.Status == http.StatusForbidden:
		return fmt.Sprintf("Graph denied the app %s access to %s. Either the application permission Mail.ReadWrite of Microsoft "+
			"Graph is missing or not admin-consented (Entra ID → App registrations → %s → API permissions), or the mailbox is "+
			"outside the app's scope in Exchange Online's RBAC for Applications: New-ServicePrincipal -AppId %s -ObjectId %s "+
			"-DisplayName mailpoller; New-ManagementScope -Name mailpoller-mailboxes -RecipientRestrictionFilter "+
			"\"PrimarySmtpAddress -eq '%s'\"; New-ManagementRoleAssignment -App %s -Role \"Application Mail.ReadWrite\" "+
			"-CustomResourceScope mailpoller-mailboxes; check with Test-ServicePrincipalAuthorization -Identity %s -Resource %s",
			client, mailbox, client, client, oid, mailbox, client, client, mailbox)
	case strings.EqualFold(e.Code, "MailboxNotEnabledForRESTAPI"):
		return mailbox + " is not served by Graph (an on-premises mailbox in a hybrid setup, or not licensed for Exchange Online): read it over EWS"
	case strings.EqualFold(e.Code, "ErrorInvalidUser") || e.Status == http.StatusNotFound && strings.HasPrefix(e.Op, "user"):
		return "no such user " + mailbox + " in the tenant: check the mailbox address in the config"
	}
	return ""
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readError builds the Error of a non-2xx answer and closes its body.
func readError(resp *http.Response, r request) *Error {
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode, Op: r.op, Mailbox: r.mailbox}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message = body.Error.Code, redact.Secrets(body.Error.Message)
	}
	e.wait, e.hasWait = retryAfter(resp.Header, time.Now())
	return e
}

// retryAfter parses a Retry-After header in seconds or as an HTTP date,
// clamped to [minWait, maxWait].
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	d, ok := httpsafe.RetryAfter(h, now, maxWait)
	if !ok {
		return 0, false
	}
	return max(d, minWait), true
}
