package poller

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/ews"
	"github.com/mailpoller/mailpoller/graph"
	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/source"
)

// This file is the one place that maps an account's config to its
// transport: a new protocol is one more case in newTransport.

// newTransport builds a's transport. hc carries a's TLS settings; tokens
// are a's, per scope; push, when not nil, takes Graph's change
// notifications.
func newTransport(a *config.Account, hc *http.Client, tc *tls.Config, tokens source.Tokens, push *graph.Push, log *slog.Logger) (source.Transport, error) {
	switch a.Protocol {
	case "", "imap":
		to := a.Timeouts.OrDefaults()
		tr := &imap.Transport{Addr: a.Server, TLSConfig: tc, StartTLS: a.StartTLS,
			ReadTimeout: to.Read.D(), CommandTimeout: to.Command.D()}
		switch {
		case a.OAuth():
			tr.Tokens = tokens
		case a.Auth == config.AuthPassword:
			tr.Username, tr.Password = a.Login(), a.Password // a Username with {mailbox} is kept as written
		default:
			return nil, notBuilt(a)
		}
		return tr, nil
	case "ews":
		opts := ews.Options{URL: a.Server, AllowHTTP: a.InsecureHTTP, HTTPClient: hc, Logger: log, Delegate: a.Access == config.AccessDelegate}
		if !a.OAuth() {
			opts.Login = &ews.Login{Username: a.Login(), Password: a.Password, NTLM: a.Auth == config.AuthNTLM}
		}
		scope := ""
		if a.Resource != "" {
			scope = strings.TrimRight(a.Resource, "/") + "/.default"
		}
		return ews.NewTransport(opts, tokens, scope), nil
	case "graph":
		if !a.OAuth() {
			return nil, notBuilt(a)
		}
		return graph.NewTransport(graph.Options{URL: a.Server, AllowHTTP: a.InsecureHTTP, HTTPClient: hc, Logger: log, Push: push}, tokens), nil
	}
	return nil, source.Permanent(fmt.Errorf("account %s: unknown protocol %q", a.Name, a.Protocol))
}

// notBuilt is the error for an auth the protocol does not have (config
// refuses it before).
func notBuilt(a *config.Account) error {
	return source.Permanent(fmt.Errorf("account %s: auth %s over %s is not built yet", a.Name, a.Auth, a.Protocol))
}

// Transports keeps one token source per (app, scope, cloud), shared by
// every account and mailbox of that app, so there is one token request
// per app, scope and lifetime; and one transport per account
// configuration, shared by its mailboxes, so an account's TLS settings
// are read and its HTTP client built once, not on every reconnect. It is
// safe for concurrent use; check uses it too.
type Transports struct {
	mu    sync.Mutex
	log   *slog.Logger
	auth  map[string]*auth.Source // by credentials and scope
	names map[*auth.Source]string // account name, for metrics
	accts map[string]*account     // by account configuration
	push  *graph.Push             // Graph change notifications, or nil
}

// account is one account's transport and the HTTP client its tokens use.
type account struct {
	tr source.Transport
	hc *http.Client
}

// NewTransports returns an empty set; log receives the token sources'
// and transports' lines.
func NewTransports(log *slog.Logger) *Transports {
	if log == nil {
		log = slog.Default()
	}
	return &Transports{log: log, auth: map[string]*auth.Source{}, names: map[*auth.Source]string{}, accts: map[string]*account{}}
}

// WithPush makes the Graph transports made from now on subscribe to
// change notifications through p; it returns t.
func (t *Transports) WithPush(p *graph.Push) *Transports {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.push = p
	return t
}

// For returns a's transport, made on first use. Its errors (an unreadable
// CA file, an unknown protocol) match source.ErrPermanent.
func (t *Transports) For(a *config.Account) (source.Transport, error) {
	acct, err := t.account(a)
	if err != nil {
		return nil, err
	}
	return acct.tr, nil
}

// errNoTokens: the account logs in with a password, not with tokens.
var errNoTokens = errors.New("the account does not use OAuth tokens")

// TokenSource is the token source a's transport gets its tokens from, or
// an error when a logs in with a password.
func (t *Transports) TokenSource(a *config.Account) (*auth.Source, error) {
	if !a.OAuth() {
		return nil, errNoTokens
	}
	acct, err := t.account(a)
	if err != nil {
		return nil, err
	}
	return t.Source(a, acct.hc, acct.tr.Scope())
}

func (t *Transports) account(a *config.Account) (*account, error) {
	b, _ := json.Marshal(accountOnly(a))
	sum := sha256.Sum256(b)
	key := hex.EncodeToString(sum[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if acct, ok := t.accts[key]; ok {
		return acct, nil
	}
	tc, err := a.TLS.ClientConfig("")
	if err != nil {
		return nil, source.Permanent(fmt.Errorf("account %s: %w", a.Name, err))
	}
	// Two minutes by default: a GetItem answer carries up to
	// max_message_bytes of base64 MIME. EWS streaming makes its own client
	// without this bound.
	hc := &http.Client{Timeout: a.Timeouts.OrDefaults().Request.D(), Transport: &http.Transport{TLSClientConfig: tc.Clone(), Proxy: http.ProxyFromEnvironment}}
	tr, err := newTransport(a, hc, tc, &accountTokens{t: t, a: a, hc: hc}, t.push, t.log.With("account", a.Name))
	if err != nil {
		return nil, err
	}
	acct := &account{tr: tr, hc: hc}
	t.accts[key] = acct
	return acct, nil
}

// accountOnly is a without what it says about its mailboxes.
func accountOnly(a *config.Account) config.Account {
	c := *a
	c.Mailbox, c.AdditionalUsers, c.Options = "", nil, config.Options{}
	return c
}

// Source returns the token source of a's app for scope, made on first use.
func (t *Transports) Source(a *config.Account, hc *http.Client, scope string) (*auth.Source, error) {
	var certFiles string
	if a.Certificate != nil {
		certFiles = a.Certificate.CertFile + "\x00" + a.Certificate.KeyFile
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{a.AuthorityURL(), a.TenantID, a.ClientID,
		a.ClientSecret, a.FederatedTokenFile, certFiles, scope}, "\x00")))
	key := hex.EncodeToString(sum[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.auth[key]; ok {
		return s, nil
	}
	var cert, keyFile string
	if a.Certificate != nil {
		cert, keyFile = a.Certificate.CertFile, a.Certificate.KeyFile
	}
	s, err := auth.New(auth.Credentials{
		Authority:          a.AuthorityURL(),
		AllowHTTP:          a.InsecureHTTP,
		TenantID:           a.TenantID,
		ClientID:           a.ClientID,
		ClientSecret:       a.ClientSecret,
		CertFile:           cert,
		KeyFile:            keyFile,
		FederatedTokenFile: a.FederatedTokenFile,
		Scope:              scope,
	}, &auth.Options{HTTPClient: hc, Logger: t.log.With("account", a.Name)})
	if err != nil {
		return nil, source.Permanent(fmt.Errorf("account %s credentials: %w", a.Name, err))
	}
	t.auth[key] = s
	t.names[s] = a.Name
	if exp, ok := s.CertificateExpiry(); ok {
		if left := time.Until(exp); left < 30*24*time.Hour {
			t.log.Warn("client certificate expires soon: upload a new one to the app registration", "account", a.Name,
				"expires", exp.Format(time.DateOnly), "days_left", int(left.Hours()/24))
		}
	}
	return s, nil
}

// accountTokens is source.Tokens for one account.
type accountTokens struct {
	t  *Transports
	a  *config.Account
	hc *http.Client
}

func (at *accountTokens) Token(ctx context.Context, scope string) (string, time.Time, error) {
	s, err := at.t.Source(at.a, at.hc, scope)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, err := s.Token(ctx)
	return tok.Value, tok.Expiry, err
}

func (at *accountTokens) Invalidate(scope, value string) {
	if s, err := at.t.Source(at.a, at.hc, scope); err == nil {
		s.Invalidate(auth.Token{Value: value})
	}
}

// Describe implements prometheus.Collector.
func (t *Transports) Describe(ch chan<- *prometheus.Desc) {
	ch <- tokenRequestsDesc
	ch <- certExpiryDesc
}

var (
	tokenRequestsDesc = prometheus.NewDesc("mailpoller_token_requests_total",
		"Token requests sent to Entra ID per account (one per app, scope and token lifetime when healthy).", []string{"account"}, nil)
	certExpiryDesc = prometheus.NewDesc("mailpoller_certificate_expiry_timestamp_seconds",
		"When the account's client certificate expires (alert when it is less than 30 days away).", []string{"account"}, nil)
)

// Collect implements prometheus.Collector: one series per account, the
// requests of all its scopes added up.
func (t *Transports) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	requests := map[string]float64{}
	expiry := map[string]time.Time{}
	for s, name := range t.names {
		requests[name] += float64(s.Requests())
		if exp, ok := s.CertificateExpiry(); ok {
			expiry[name] = exp
		}
	}
	names := make([]string, 0, len(requests))
	for name := range requests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ch <- prometheus.MustNewConstMetric(tokenRequestsDesc, prometheus.CounterValue, requests[name], name)
		if exp, ok := expiry[name]; ok {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(exp.Unix()), name)
		}
	}
}
