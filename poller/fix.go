package poller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
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
	case errors.As(err, &ae) && ae.Fix != "":
		return ae.Fix
	case errors.As(err, &f):
		if fix := f.Fix(a); fix != "" {
			return fix
		}
	}
	switch {
	case isStall(err):
		return "the server stopped answering in the middle of a command. If it keeps happening, look for a proxy or " +
			"firewall that stalls or drops long-lived connections between mailpoller and the server, and at the server's health."
	case untrusted(err):
		return "the server's TLS certificate is not trusted: set tls.ca_file to the CA that signed it"
	case notTLS(err):
		return "the server did not answer in TLS: check that server names the TLS port (IMAP 993, EWS https://…:443)"
	}
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return fmt.Sprintf("the host name %q does not exist in DNS: check server (Exchange Online is outlook.office365.com) "+
			"and authority, and the DNS resolver of this machine", dns.Name)
	case errors.As(err, &dns):
		return fmt.Sprintf("DNS lookup of %q failed: check this machine's DNS resolver and network", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens at the server's address: check server (host and port; IMAP is 993) and any firewall on the way"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "the server's network cannot be reached from here: check routing, proxy and firewall rules"
	case errors.Is(err, syscall.ECONNRESET):
		return "the server or a middlebox reset the connection: check proxies and firewalls between mailpoller and the server"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time: check that server is reachable from here (firewall, proxy) and not overloaded"
	}
	return ""
}

// misconfigured reports whether err points at a wrong setting (server,
// tls.ca_file) rather than at a passing outage, so `run --once` does not
// spend its retry budget on it. Connection refused is not here: a server
// restarting refuses too.
func misconfigured(err error) bool {
	var dns *net.DNSError
	return untrusted(err) || notTLS(err) || errors.Is(err, source.ErrMisconfigured) || errors.As(err, &dns) && dns.IsNotFound
}

// notTLS reports whether a TLS handshake met a server that does not speak
// TLS (a plain-text port).
func notTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// MissingRole says why claims do not carry role ("" when they do): the
// token has no roles at all, or roles without this one.
func MissingRole(claims auth.Claims, role string) string {
	switch {
	case claims.HasRole(role):
		return ""
	case len(claims.Roles) == 0:
		return "the token has no roles claim"
	}
	return fmt.Sprintf("the token's roles %v lack %s", claims.Roles, role)
}

// ConsentFix is the fix for a token without role: the application
// permission is missing or admin consent was not granted. Until it is,
// mailbox permissions cannot be checked.
func ConsentFix(clientID, role string) string {
	api := "APIs my organization uses → Office 365 Exchange Online"
	if strings.HasPrefix(role, "Mail.") {
		api = "Microsoft Graph"
	}
	return fmt.Sprintf("in Entra ID, open the app registration %s → API permissions → Add a permission → %s → "+
		"Application permissions → %s, then \"Grant admin consent\"; new grants can take a few minutes", clientID, api, role)
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

// fix is Fix for w's mailbox, as check diagnoses it: when the transport
// refused the login and the token lacks the transport's role, the fix is
// admin consent, not the mailbox permission the transport would suggest.
func (w *worker) fix(ctx context.Context, err error) string {
	a := w.admin()
	var f source.Fixer
	var ae *auth.Error
	if errors.As(err, &f) && !errors.As(err, &ae) {
		if claims, role, ok := w.tokenClaims(ctx); ok {
			if MissingRole(claims, role) != "" {
				return ConsentFix(a.ClientID, role)
			}
			a.ObjectID = claims.ObjectID
		}
	}
	return Fix(err, a)
}

// tokenClaims reads the claims of the token w's transport uses (cached:
// the transport just used it) and the role the transport needs.
func (w *worker) tokenClaims(ctx context.Context) (auth.Claims, string, bool) {
	tr, err := w.tokens.For(w.mb.Account)
	if err != nil {
		return auth.Claims{}, "", false
	}
	ts, err := w.tokens.TokenSource(w.mb.Account)
	if err != nil {
		return auth.Claims{}, "", false
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tok, err := ts.Token(tctx)
	if err != nil {
		return auth.Claims{}, "", false
	}
	claims, err := auth.ParseClaims(tok.Value)
	if err != nil {
		return auth.Claims{}, "", false
	}
	return claims, tr.Role(), true
}

// admin is the ids of w's mailbox for fix texts.
func (w *worker) admin() source.Admin {
	a := w.mb.Account
	return source.Admin{Account: a.Name, TenantID: a.TenantID, ClientID: a.ClientID, Mailbox: w.mb.Address}
}
