package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/mailpoller/mailpoller/internal/redact"
)

// Authority hosts of the Microsoft identity platform per national cloud.
var cloudAuthorities = map[string]string{
	"public": "https://login.microsoftonline.com",
	"usgov":  "https://login.microsoftonline.us",
	"china":  "https://login.chinacloudapi.cn",
}

// AuthorityURL returns the identity platform base URL for a: the explicit
// authority without trailing slash when set, otherwise the host of a's cloud
// (public when empty or unknown). The token endpoint is
// AuthorityURL()/<tenant>/oauth2/v2.0/token.
func (a *Account) AuthorityURL() string {
	if a.Authority != "" {
		return strings.TrimRight(a.Authority, "/")
	}
	if u, ok := cloudAuthorities[a.Cloud]; ok {
		return u
	}
	return cloudAuthorities["public"]
}

// Authentication methods of the auth key.
const (
	AuthOAuth    = "oauth"    // app-only OAuth 2.0 tokens from Entra ID (every protocol; the default)
	AuthPassword = "password" // IMAP LOGIN or AUTHENTICATE PLAIN
	AuthNTLM     = "ntlm"     // EWS with NTLM (on-premises Exchange)
	AuthBasic    = "basic"    // EWS with HTTP Basic (on-premises Exchange)
)

// OAuth reports whether a gets app-only tokens from Entra ID (auth: oauth,
// the default) rather than logging in with a username and password.
func (a *Account) OAuth() bool { return a.Auth == "" || a.Auth == AuthOAuth }

// Login is the username a logs in with when it does not use OAuth: the
// username key, or the account's mailbox when that is left out.
func (a *Account) Login() string {
	if a.Username != "" {
		return a.Username
	}
	return a.Mailbox
}

// CredentialKind names the credential a uses: "client_secret",
// "certificate", "federated_token_file", or "" when none is set. After Load,
// a secret from client_secret_file is in ClientSecret and counts as
// "client_secret".
func (a *Account) CredentialKind() string {
	switch {
	case !a.OAuth():
		return a.Auth
	case a.ClientSecret != "" || a.ClientSecretFile != "":
		return "client_secret"
	case a.Certificate != nil:
		return "certificate"
	case a.FederatedTokenFile != "":
		return "federated_token_file"
	}
	return ""
}

// String describes a without any secret, so an Account printed with %v or
// %+v never leaks its client secret.
func (a Account) String() string {
	return fmt.Sprintf("account %s (%s, tenant %s, client %s, credential %s, mailbox %s)",
		a.Name, a.Protocol, a.TenantID, a.ClientID, a.CredentialKind(), a.Mailbox)
}

// GoString is String, so %#v does not print the secret either.
func (a Account) GoString() string { return a.String() }

// LogValue implements slog.LogValuer: the account's identifying fields and
// the kind of credential, never the secret itself.
func (a Account) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", a.Name),
		slog.String("protocol", a.Protocol),
		slog.String("auth", a.Auth),
		slog.String("tenant_id", a.TenantID),
		slog.String("client_id", a.ClientID),
		slog.String("credential", a.CredentialKind()),
		slog.String("authority", a.AuthorityURL()),
		slog.String("server", a.Server),
		slog.String("mailbox", a.Mailbox),
		slog.Int("additional_users", len(a.AdditionalUsers)),
	}
	if a.ClientSecretFile != "" {
		attrs = append(attrs, slog.String("client_secret_file", a.ClientSecretFile))
	}
	if !a.OAuth() {
		attrs = append(attrs, slog.String("username", a.Login()))
	}
	if a.PasswordFile != "" {
		attrs = append(attrs, slog.String("password_file", a.PasswordFile))
	}
	return slog.GroupValue(attrs...)
}

// String describes n without its password or token.
func (n NATS) String() string {
	where := "embedded on " + n.Embedded.Listen
	if n.URL != "" {
		where = redact.URLs(n.URL)
	}
	return fmt.Sprintf("nats %s (stream %s, subjects %s.>)", where, n.Stream, n.SubjectPrefix)
}

// GoString is String, so %#v does not print secrets either.
func (n NATS) GoString() string { return n.String() }

// LogValue implements slog.LogValuer without the password or token.
func (n NATS) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redact.URLs(n.URL)),
		slog.String("embedded_listen", n.Embedded.Listen),
		slog.String("stream", n.Stream),
		slog.String("subject_prefix", n.SubjectPrefix),
		slog.String("user", n.User),
		slog.Bool("password", n.Password != ""),
		slog.Bool("token", n.Token != ""),
		slog.String("credentials_file", n.CredentialsFile),
	)
}
