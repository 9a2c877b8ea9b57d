package poller

import (
	"errors"
	"strings"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/ews"
	"github.com/mailpoller/mailpoller/imap"
)

// Fix says in plain words what an admin can do about err ("" when nothing
// specific is known).
func Fix(err error) string {
	var ae *auth.Error
	var re *ews.ResponseError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae):
		return ae.Fix
	case errors.As(err, &re):
		return ewsFix(re)
	case errors.Is(err, imap.ErrAuthFailed):
		return "Exchange refused the app's token for this mailbox. Check, in order: the app registration has the " +
			"application permission IMAP.AccessAsApp on \"Office 365 Exchange Online\" with admin consent granted; " +
			"the app's service principal is registered in Exchange (New-ServicePrincipal -AppId <client id> -ObjectId " +
			"<Enterprise application object id, not the app registration's>); the service principal has FullAccess on " +
			"this mailbox (Add-MailboxPermission -Identity <mailbox> -User <service principal id> -AccessRights FullAccess). " +
			"`mailpoller check` prints these commands with your ids filled in."
	case errors.Is(err, imap.ErrNotConnected):
		return "Exchange accepted the token but will not open the mailbox: grant the service principal FullAccess on it " +
			"(Add-MailboxPermission), or wait if many connections were opened in a short time."
	case isStall(err):
		return "the server stopped answering in the middle of a command; mailpoller closed the connection and " +
			"reconnects with backoff. If it keeps happening, look for a proxy or firewall that stalls or drops " +
			"long-lived connections between mailpoller and the server, and at the server's health."
	case strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "certificate"):
		return "the server's TLS certificate is not trusted: set tls.ca_file to the CA that signed it"
	}
	return ""
}

// errorKind is the "kind" label of mailpoller_errors_total.
func errorKind(err error) string {
	var ae *auth.Error
	switch {
	case errors.As(err, &ae), errors.Is(err, imap.ErrAuthFailed), errors.Is(err, imap.ErrNotConnected),
		errors.Is(err, ews.ErrAccessDenied), errors.Is(err, ews.ErrImpersonateUserDenied):
		return "auth"
	case func() bool { _, ok := serverWait(err); return ok }():
		return "throttled"
	case isStall(err):
		return "stalled"
	case strings.Contains(err.Error(), "dial ") || strings.Contains(err.Error(), "greeting"):
		return "connect"
	}
	return "other"
}

// ewsFix explains the EWS errors only an admin can fix.
func ewsFix(re *ews.ResponseError) string {
	switch re.Code {
	case "Unauthorized":
		return "Exchange refused the token: give the app the application permission full_access_as_app on " +
			"\"Office 365 Exchange Online\" and grant admin consent (x-ms-diagnostics says which check failed)"
	case "EwsBlocked":
		return "Exchange Online blocks EWS for this app: a tenant admin must run Set-OrganizationConfig -EwsEnabled $true " +
			"-EwsAllowedAppIDs \"<client id>,...\" (keep the ids already listed); EWS in Exchange Online ends on 1 April 2027, plan a move to IMAP"
	case "ErrorNonExistentMailbox":
		return "no mailbox with this address: check the address (use the primary SMTP address)"
	case "ErrorImpersonateUserDenied", "ErrorAccessDenied":
		return "the app may not open this mailbox: check full_access_as_app and any RBAC for Applications scope or application access policy that limits it"
	}
	return ""
}
