package ews

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
)

// ewsBlockedFix is what a tenant admin must do when Exchange Online blocks
// EWS for the app (PROTOCOLS.md §5.1).
const ewsBlockedFix = "Exchange Online blocks EWS for apps that are not listed in EwsAllowedAppIDs: a tenant admin must run " +
	`Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs "<client id>" (keep the ids already listed), ` +
	"and the mailbox's own EwsEnabled must not be $false. EWS in Exchange Online ends for everyone on 1 April 2027; " +
	"plan the move to Microsoft Graph (or use IMAP)."

// unauthorized builds the error for HTTP 401 from x-ms-diagnostics
// ("<code>;reason=\"...\";error_category=\"...\"", PROTOCOLS.md §1.4, §4.4):
// raw is the header as sent, diag the same scrubbed for the error.
func unauthorized(raw, diag string) *ResponseError {
	d := strings.ToLower(raw)
	var msg string
	switch {
	case strings.HasPrefix(d, "2000008") || strings.Contains(d, "invalid_grant") || strings.Contains(d, "no permissions"):
		msg = "Exchange found no EWS permission in the token (full_access_as_app): add the application permission full_access_as_app " +
			"of \"Office 365 Exchange Online\" to the app registration and grant admin consent; then restrict it to these " +
			"mailboxes with RBAC for Applications if needed"
	case strings.Contains(d, "invalid_resource") || strings.Contains(d, "audience"):
		msg = "the token is for another resource: Exchange Online takes https://outlook.office365.com/.default; " +
			"an Exchange Server with hybrid modern auth takes its own origin: set the account's resource to it (https://mail.contoso.com)"
	case strings.Contains(d, "expired") || strings.Contains(d, "lifetime"):
		msg = "the token has expired; a new one will be requested"
	default:
		msg = "Exchange refused the token: check that the app has full_access_as_app with admin consent and that the " +
			"token is for https://outlook.office365.com/.default"
	}
	return &ResponseError{Class: "HTTP", Code: "Unauthorized", Message: msg, HTTPStatus: http.StatusUnauthorized, Diagnostics: diag}
}

// ewsBlockedText reports whether an error text says EWS is switched off or
// the app is not allowed. Exchange's wording is not documented, so this
// looks for the setting names and the usual phrases.
func ewsBlockedText(s string) bool {
	s = strings.ToLower(s)
	if strings.Contains(s, "ewsenabled") || strings.Contains(s, "ewsallowedappids") || strings.Contains(s, "ews allowed app") {
		return true
	}
	if !strings.Contains(s, "ews") && !strings.Contains(s, "exchange web services") {
		return false
	}
	for _, w := range []string{"disabled", "blocked", "not enabled", "not allowed", "not currently enabled"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// blocked builds the EWS-blocked error; text is what the server said.
func blocked(status int, text, diag string) *ResponseError {
	msg := ewsBlockedFix
	if text != "" {
		msg = "server said \"" + text + "\". " + msg
	}
	return &ResponseError{Class: "HTTP", Code: "EwsBlocked", Message: msg, HTTPStatus: status, Diagnostics: diag}
}

// Waits the server asks for are clamped to [minBackoff, maxBackoff]: a
// BackOffMilliseconds of 0 would retry at once, one of 9e12 would wait 285
// years. minBackoff is a variable for tests.
var minBackoff = time.Second

const maxBackoff = 15 * time.Minute

// clampBackoff bounds a positive wait; zero or less stays zero (no hint).
func clampBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return min(max(d, minBackoff), maxBackoff)
}

// retryAfter parses a Retry-After header in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	d, _ := httpsafe.RetryAfter(h, now, maxBackoff)
	return d
}

// loginRefused builds the error for HTTP 401 to a request with a
// username and password: the scheme switched off on the EWS virtual
// directory (it is not among the schemes the server offers), or the
// credentials refused. offered is the answer's WWW-Authenticate values.
func loginRefused(l *Login, offered []string) *ResponseError {
	var list []string
	for _, o := range offered {
		name, _, _ := strings.Cut(strings.TrimSpace(o), " ")
		list = append(list, name)
	}
	has := func(schemes ...string) bool {
		return slices.ContainsFunc(list, func(name string) bool {
			return slices.ContainsFunc(schemes, func(s string) bool { return strings.EqualFold(name, s) })
		})
	}
	say := "the server offers " + strings.Join(list, ", ")
	if len(list) == 0 {
		say = "the server named no authentication scheme"
	}
	switch {
	case l.NTLM && !has("NTLM", "Negotiate"):
		return &ResponseError{Class: "HTTP", Code: "WindowsAuthOff", HTTPStatus: http.StatusUnauthorized,
			Message: "the EWS virtual directory does not offer NTLM (Windows authentication is off; " + say + ")"}
	case !l.NTLM && !has("Basic"):
		return &ResponseError{Class: "HTTP", Code: "BasicAuthOff", HTTPStatus: http.StatusUnauthorized,
			Message: "the EWS virtual directory does not offer Basic authentication (" + say + ")"}
	}
	return &ResponseError{Class: "HTTP", Code: "LoginRefused", HTTPStatus: http.StatusUnauthorized,
		Message: "Exchange refused the username and password (" + l.scheme() + ")"}
}
