package poller

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/source"
)

// Fix says in plain words what an admin can do about err ("" when nothing
// specific is known), with a's ids filled in where the text names them.
// Transports' errors say it themselves (source.Fixer); what is left here
// is what any transport's connection can run into.
func Fix(err error, a source.Admin) string {
	var ae *auth.Error
	var f source.Fixer
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae):
		return ae.Fix
	case errors.As(err, &f):
		if fix := f.Fix(a); fix != "" {
			return fix
		}
	}
	switch {
	case isStall(err):
		return "the server stopped answering in the middle of a command; mailpoller closed the connection and " +
			"reconnects with backoff. If it keeps happening, look for a proxy or firewall that stalls or drops " +
			"long-lived connections between mailpoller and the server, and at the server's health."
	case untrusted(err):
		return "the server's TLS certificate is not trusted: set tls.ca_file to the CA that signed it"
	}
	return ""
}

// untrusted reports whether err is a failed certificate check.
func untrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &cv)
}

// retryAfter is the wait a server asked for in err, if it asked.
func retryAfter(err error) (time.Duration, bool) {
	var t source.Throttled
	if errors.As(err, &t) {
		return t.RetryAfter()
	}
	return 0, false
}

// errorKind is the "kind" label of mailpoller_errors_total.
func errorKind(err error) string {
	var ae *auth.Error
	var f source.Fixer
	var op *net.OpError
	switch {
	case func() bool { _, ok := retryAfter(err); return ok }():
		return "throttled"
	case errors.As(err, &ae), errors.As(err, &f) && f.Fix(source.Admin{}) != "":
		return "auth"
	case isStall(err):
		return "stalled"
	case errors.As(err, &op) && op.Op == "dial", untrusted(err):
		return "connect"
	}
	return "other"
}

// admin is the ids of w's mailbox for fix texts.
func (w *worker) admin() source.Admin {
	a := w.mb.Account
	return source.Admin{Account: a.Name, TenantID: a.TenantID, ClientID: a.ClientID, Mailbox: w.mb.Address}
}
