package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
)

const redacted = "[redacted]"

// Credentials name one app registration and how it proves its identity.
// Exactly one of ClientSecret, CertFile (with KeyFile) or FederatedTokenFile
// must be set.
//
// Formatting a Credentials value with any fmt verb, through log/slog or as
// JSON never shows ClientSecret. (Go's fmt cannot call methods on values held
// in unexported struct fields, so do not embed Credentials unexported in a
// struct you print.)
type Credentials struct {
	// Authority is the login host's base URL without a trailing slash, e.g.
	// https://login.microsoftonline.com (see AuthorityFor). Empty means the
	// public cloud. It must use https unless AllowHTTP is set.
	Authority string
	// AllowHTTP lets Authority use plain http, and then only to a loopback
	// host (127.0.0.1, ::1, localhost). It is meant for tests against a
	// local token endpoint: New logs a warning when it is set.
	AllowHTTP bool
	// TenantID is the directory (tenant) GUID or a verified domain name.
	// The multi-tenant aliases common, organizations and consumers do not
	// work with the client-credentials grant and are refused.
	TenantID string
	// ClientID is the application (client) ID of the app registration.
	ClientID string
	// ClientSecret is the client secret's Value.
	ClientSecret string
	// CertFile is a PEM file with the app's certificate (the first
	// CERTIFICATE block is used); KeyFile is the PEM file with its RSA
	// private key (PKCS#1 or PKCS#8, unencrypted). An empty KeyFile means the
	// key is in CertFile.
	CertFile, KeyFile string
	// FederatedTokenFile is a file holding a token from an external
	// identity provider (workload identity federation, e.g. a Kubernetes
	// service-account token). It is read again for every token request.
	FederatedTokenFile string
	// Scope is the requested scope; empty means DefaultScope. It must end
	// in "/.default".
	Scope string
}

// kind names the credential type for logs and messages.
func (c Credentials) kind() string {
	switch {
	case c.ClientSecret != "":
		return "client_secret"
	case c.CertFile != "" || c.KeyFile != "":
		return "certificate"
	case c.FederatedTokenFile != "":
		return "federated_token_file"
	}
	return "none"
}

// String describes c without its secret.
func (c Credentials) String() string {
	secret := ""
	if c.ClientSecret != "" {
		secret = redacted
	}
	return fmt.Sprintf("{Authority:%s AllowHTTP:%t TenantID:%s ClientID:%s ClientSecret:%s CertFile:%s KeyFile:%s FederatedTokenFile:%s Scope:%s}",
		c.Authority, c.AllowHTTP, c.TenantID, c.ClientID, secret, c.CertFile, c.KeyFile, c.FederatedTokenFile, c.Scope)
}

// GoString is like String, in Go syntax.
func (c Credentials) GoString() string {
	secret := ""
	if c.ClientSecret != "" {
		secret = redacted
	}
	return fmt.Sprintf("auth.Credentials{Authority:%q, AllowHTTP:%t, TenantID:%q, ClientID:%q, ClientSecret:%q, CertFile:%q, KeyFile:%q, FederatedTokenFile:%q, Scope:%q}",
		c.Authority, c.AllowHTTP, c.TenantID, c.ClientID, secret, c.CertFile, c.KeyFile, c.FederatedTokenFile, c.Scope)
}

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s, %q,
// %x …) prints c without its secret.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue implements slog.LogValuer: the names and the credential kind,
// never the secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("authority", c.Authority),
		slog.String("tenant", c.TenantID),
		slog.String("client_id", c.ClientID),
		slog.String("credential", c.kind()),
	)
}

// MarshalJSON writes c with the secret replaced by "[redacted]".
func (c Credentials) MarshalJSON() ([]byte, error) {
	type plain Credentials
	p := plain(c)
	if p.ClientSecret != "" {
		p.ClientSecret = redacted
	}
	return json.Marshal(p)
}

// validate checks c and returns it with defaults applied. All problems are
// reported at once.
func (c Credentials) validate() (Credentials, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	c.Authority = strings.TrimRight(strings.TrimSpace(c.Authority), "/")
	if c.Authority == "" {
		c.Authority = AuthorityPublic
	}
	if err := checkAuthority(c.Authority, c.AllowHTTP); err != nil {
		errs = append(errs, err)
	}

	switch t := strings.ToLower(c.TenantID); {
	case c.TenantID == "":
		bad("tenant_id is empty: set it to the directory (tenant) ID shown on the app registration's overview page")
	case t == "common" || t == "organizations" || t == "consumers":
		bad("tenant_id %q does not work for app-only tokens: use the tenant's directory GUID or a verified domain", c.TenantID)
	case !isTenantName(c.TenantID):
		bad("tenant_id %q is not a GUID or domain name", c.TenantID)
	}
	switch {
	case c.ClientID == "":
		bad("client_id is empty: set it to the application (client) ID of the app registration")
	case strings.ContainsAny(c.ClientID, " \t\r\n/?#&"):
		bad("client_id %q contains spaces or URL characters", c.ClientID)
	}

	n := 0
	for _, set := range []bool{c.ClientSecret != "", c.CertFile != "" || c.KeyFile != "", c.FederatedTokenFile != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		bad("no credential: set a client secret, a certificate (cert_file and key_file) or a federated token file")
	case n > 1:
		bad("more than one credential is set (%s and others): set exactly one of client secret, certificate or federated token file", c.kind())
	case c.KeyFile != "" && c.CertFile == "":
		bad("key_file is set without cert_file")
	}

	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if !strings.HasSuffix(c.Scope, "/.default") || strings.ContainsAny(c.Scope, " \t") {
		bad("scope %q must be a single resource ending in /.default, e.g. %s", c.Scope, DefaultScope)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("auth: invalid credentials for client %s: %w", c.ClientID, errors.Join(errs...))
	}
	return c, nil
}

// checkAuthority accepts https URLs, and http only when allowHTTP is set and
// only to loopback, so that a secret never crosses a network in the clear.
func checkAuthority(a string, allowHTTP bool) error {
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return fmt.Errorf("authority %q is not a URL: use e.g. %s", a, AuthorityPublic)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("authority %q must be a plain base URL without query, fragment or user info", a)
	}
	if err := httpsafe.CheckURL(a, allowHTTP, "the credential", AuthorityPublic); err != nil {
		return fmt.Errorf("authority %w", err)
	}
	return nil
}

// isTenantName reports whether s looks like a GUID or a DNS name, so it is
// safe as one path segment.
func isTenantName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return !strings.HasPrefix(s, ".") && !strings.Contains(s, "..")
}
