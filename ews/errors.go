package ews

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

// ResponseError is an error reported by the EWS server: a SOAP fault, a
// response message with ResponseClass="Error", or an HTTP status that
// carries no SOAP body (401, 403, 503).
//
// errors.Is matches a *ResponseError against the sentinels below by Code,
// and against source.ErrPermanent when only an admin can fix the cause.
type ResponseError struct {
	Class       string        // "Error" or "Warning" for response messages; "Fault" for SOAP faults; "HTTP" otherwise
	Code        string        // ResponseCode, e.g. "ErrorServerBusy"; "Unauthorized", "EwsBlocked" or "HTTP<status>" for HTTP errors
	Message     string        // MessageText / faultstring, or our explanation of an HTTP error
	BackOff     time.Duration // BackOffMilliseconds from MessageXml, or Retry-After, at most 15 minutes; zero if none (see Backoff)
	HTTPStatus  int           // HTTP status of the response
	Diagnostics string        // x-ms-diagnostics header, if any (never contains the token)
}

// Error implements error.
func (e *ResponseError) Error() string {
	var b strings.Builder
	b.WriteString("ews: ")
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.BackOff > 0 {
		fmt.Fprintf(&b, " (server asks to back off %s)", e.BackOff)
	}
	if e.Diagnostics != "" {
		b.WriteString(" [x-ms-diagnostics: ")
		b.WriteString(e.Diagnostics)
		b.WriteString("]")
	}
	return b.String()
}

// Is matches sentinels by Code, source.ErrPermanent by classification and
// source.ErrMisconfigured for HTTP 404 (the URL names no EWS endpoint).
func (e *ResponseError) Is(target error) bool {
	if target == source.ErrPermanent {
		return e.permanent()
	}
	if target == source.ErrMisconfigured {
		return e.HTTPStatus == http.StatusNotFound
	}
	if target == source.ErrVanished {
		return e.Code == "ErrorItemNotFound"
	}
	t, ok := target.(*ResponseError)
	return ok && t.Code != "" && t.Code == e.Code
}

// Sentinel errors. Compare with errors.Is; each says how a caller reacts.
var (
	// ErrServerBusy: Exchange throttles this app. Wait BackOff (see
	// Backoff) before the next request to this mailbox; do not retry at once,
	// retries prolong throttling.
	ErrServerBusy = &ResponseError{Code: "ErrorServerBusy"}
	// ErrInvalidSyncStateData: the saved SyncState is no longer valid. Sync
	// again without a state (a full resync) and let the event id absorb the
	// duplicates.
	ErrInvalidSyncStateData = &ResponseError{Code: "ErrorInvalidSyncStateData"}
	// ErrItemNotFound: the item was deleted or moved since it was listed.
	// Skip it; there is nothing left to fetch or act on.
	ErrItemNotFound = &ResponseError{Code: "ErrorItemNotFound"}
	// ErrNonExistentMailbox: the address is not a mailbox in this tenant.
	// Permanent: fix the mailbox address in the config.
	ErrNonExistentMailbox = &ResponseError{Code: "ErrorNonExistentMailbox"}
	// ErrImpersonateUserDenied: the app may not open this mailbox (an
	// application access policy or RBAC scope excludes it). Permanent until
	// an admin changes the scope.
	ErrImpersonateUserDenied = &ResponseError{Code: "ErrorImpersonateUserDenied"}
	// ErrAccessDenied: Exchange refused the operation. Permanent until an
	// admin grants access.
	ErrAccessDenied = &ResponseError{Code: "ErrorAccessDenied"}
	// ErrInvalidExchangeImpersonationHeaderData: the impersonation header is
	// missing or names no valid mailbox. Permanent: fix the mailbox address.
	ErrInvalidExchangeImpersonationHeaderData = &ResponseError{Code: "ErrorInvalidExchangeImpersonationHeaderData"}
	// ErrUnauthorized: HTTP 401. The token was refused; the message says
	// which admin step is missing. Permanent when the token lacks
	// permissions, transient when it had expired (the client has already
	// called Options.OnUnauthorized so the next token is fresh).
	ErrUnauthorized = &ResponseError{Code: "Unauthorized"}
	// ErrEWSBlocked: the tenant blocks EWS for this app (EwsEnabled,
	// EwsAllowedAppIDs). Permanent: only a tenant admin can allow the app,
	// and only until EWS ends in Exchange Online on 1 April 2027.
	ErrEWSBlocked = &ResponseError{Code: "EwsBlocked"}
)

// transientCodes are response codes a later retry can fix
// (MS-OXWSCDATA ResponseCodeType; PROTOCOLS.md §4.4).
var transientCodes = map[string]bool{
	"ErrorServerBusy":                   true,
	"ErrorExceededConnectionCount":      true,
	"ErrorInternalServerTransientError": true,
	"ErrorTimeoutExpired":               true,
	"ErrorMailboxStoreUnavailable":      true,
	"ErrorMailboxMoveInProgress":        true,
	"ErrorConnectionFailed":             true,
	"ErrorServerTemporaryUnavailable":   true,
	"ErrorBatchProcessingStopped":       true,
	"ServiceUnavailable":                true,
	"TooManyRequests":                   true,
	"ErrorExceededSubscriptionCount":    false,
	"ErrorInternalServerError":          false, // transient only with a back-off hint, see transient()
}

// permanentCodes are response codes only an admin (or a config change) can
// fix.
var permanentCodes = map[string]bool{
	"LoginRefused":                                true,
	"WindowsAuthOff":                              true,
	"BasicAuthOff":                                true,
	"ErrorNonExistentMailbox":                     true,
	"ErrorImpersonateUserDenied":                  true,
	"ErrorAccessDenied":                           true,
	"ErrorInvalidExchangeImpersonationHeaderData": true,
	"ErrorImpersonationDenied":                    true,
	"ErrorMailboxConfiguration":                   true,
	"ErrorInvalidServerVersion":                   true,
	"ErrorSchemaValidation":                       true,
	"ErrorInvalidRequest":                         true,
	"EwsBlocked":                                  true,
	"Redirect":                                    true,
}

func (e *ResponseError) transient() bool {
	if e.permanent() {
		return false
	}
	if transientCodes[e.Code] || e.BackOff > 0 {
		return true
	}
	if e.Code == "Unauthorized" {
		return true
	}
	return e.HTTPStatus >= 500 && e.Class == "HTTP"
}

func (e *ResponseError) permanent() bool {
	if permanentCodes[e.Code] {
		return true
	}
	if e.Code == "Unauthorized" {
		d := strings.ToLower(e.Diagnostics)
		return strings.Contains(d, "invalid_grant") || strings.Contains(d, "invalid_resource") ||
			strings.HasPrefix(d, "2000008") || strings.HasPrefix(d, "2000003")
	}
	return false
}

// IsTransient reports whether err is worth retrying after a wait: throttling,
// 5xx, expired tokens, transient mailbox states, and network errors other
// than cancellation.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return re.transient()
	}
	var ol *overLimitError
	return !errors.As(err, &ol) && !errors.Is(err, errDecode)
}

// Backoff returns the wait the server asked for (BackOffMilliseconds or
// Retry-After), if err carries one, clamped to between 1 second and 15
// minutes whatever the server said.
func Backoff(err error) (time.Duration, bool) {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.RetryAfter()
	}
	return 0, false
}

// errDecode marks responses that are not the SOAP we expect.
var errDecode = errors.New("malformed EWS response")

// RetryAfter implements source.Throttled: the server's requested wait,
// clamped, if it asked for one.
func (e *ResponseError) RetryAfter() (time.Duration, bool) {
	if e.BackOff <= 0 {
		return 0, false
	}
	return clampBackoff(e.BackOff), true
}

// Fix implements source.Fixer: the admin step for the errors only an admin
// can fix, "" for the others.
func (e *ResponseError) Fix(a source.Admin) string {
	clientID, mailbox := a.ClientID, a.Mailbox
	if clientID == "" {
		clientID = "<client id>"
	}
	if mailbox == "" {
		mailbox = "<mailbox>"
	}
	switch e.Code {
	case "Unauthorized":
		return "Exchange refused the token: give the app the application permission full_access_as_app on " +
			"\"Office 365 Exchange Online\" and grant admin consent (x-ms-diagnostics says which check failed)"
	case "EwsBlocked":
		return "Exchange Online blocks EWS for this app: a tenant admin must run Set-OrganizationConfig -EwsEnabled $true " +
			"-EwsAllowedAppIDs \"" + clientID + ",...\" (keep the ids already listed); EWS in Exchange Online ends on 1 April 2027, plan a move to IMAP"
	case "HTTP404":
		return "the EWS URL answers HTTP 404: check server, it should be https://outlook.office365.com/EWS/Exchange.asmx " +
			"(on-premises: https://<your Exchange host>/EWS/Exchange.asmx)"
	case "ErrorNonExistentMailbox":
		return "no mailbox with this address: check the address (use the primary SMTP address)"
	case "ErrorImpersonateUserDenied", "ErrorAccessDenied":
		return "the app may not open this mailbox: check full_access_as_app and any RBAC for Applications scope or application access policy that limits it. " +
			"With a service account on Exchange Server: impersonation needs New-ManagementRoleAssignment -Name mailpoller-impersonation " +
			"-Role ApplicationImpersonation -User <service account>; access: delegate needs Add-MailboxPermission -Identity " + mailbox +
			" -User <service account> -AccessRights FullAccess"
	case "LoginRefused":
		return "check username (DOMAIN\\user or user@domain) and password (or password_file); the account may be locked or its password expired. " +
			"mailpoller does not retry a refused password, so it cannot lock the account out"
	case "WindowsAuthOff":
		return "turn Windows authentication on for EWS (Set-WebServicesVirtualDirectory -Identity \"<server>\\EWS (Default Web Site)\" -WindowsAuthentication $true), " +
			"or use auth: basic if Basic is on"
	case "BasicAuthOff":
		return "Basic authentication is disabled on the EWS virtual directory: use auth: ntlm, or turn it on " +
			"(Set-WebServicesVirtualDirectory -Identity \"<server>\\EWS (Default Web Site)\" -BasicAuthentication $true; only over HTTPS)"
	}
	return ""
}
