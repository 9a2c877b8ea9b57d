package poller

import (
	"errors"
	"strings"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/imap"
)

// Fix says in plain words what an admin can do about err ("" when nothing
// specific is known).
func Fix(err error) string {
	var ae *auth.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae):
		return ae.Fix
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
	case strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "certificate"):
		return "the server's TLS certificate is not trusted: set tls.ca_file to the CA that signed it"
	}
	return ""
}

// errorKind is the "kind" label of mailpoller_errors_total.
func errorKind(err error) string {
	var ae *auth.Error
	switch {
	case errors.As(err, &ae), errors.Is(err, imap.ErrAuthFailed), errors.Is(err, imap.ErrNotConnected):
		return "auth"
	case func() bool { _, ok := imap.Backoff(err); return ok }():
		return "throttled"
	case strings.Contains(err.Error(), "dial ") || strings.Contains(err.Error(), "greeting"):
		return "connect"
	}
	return "other"
}
