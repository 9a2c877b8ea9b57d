package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
)

// DefaultRefreshBefore is how long before expiry a cached token is replaced.
const DefaultRefreshBefore = 5 * time.Minute

// requestTimeout bounds one token request. The request runs detached from
// the caller's context, so that one caller giving up does not fail the
// others waiting for the same request.
const requestTimeout = 60 * time.Second

// Options tune a Source. A nil *Options is the same as a zero Options.
type Options struct {
	// HTTPClient sends the token requests; nil means a client with a 60 s
	// timeout. The Source uses a copy that never follows redirects (the
	// request carries the credential); the caller's client is not changed.
	HTTPClient *http.Client
	// Logger receives debug records "token requested" and "token acquired"
	// (keys tenant, client_id, expires_in) and warnings; nil means
	// slog.Default(). Secrets, tokens and assertions are never logged.
	Logger *slog.Logger
	// RefreshBefore is how long before expiry a cached token is refreshed;
	// zero means DefaultRefreshBefore. For tokens whose whole lifetime is
	// shorter than twice this, half the lifetime is used instead.
	RefreshBefore time.Duration
	// Now returns the current time; nil means time.Now. Tests inject a
	// clock here.
	Now func() time.Time
}

// Source issues app-only access tokens for one app registration and caches
// them. Share one Source between all mailboxes of an app: it sends one
// request per token lifetime. A Source is safe for concurrent use.
type Source struct {
	creds         Credentials
	tokenURL      string
	cert          *certificate // nil unless a certificate credential
	hc            *http.Client
	log           *slog.Logger
	refreshBefore time.Duration
	now           func() time.Time
	requests      atomic.Int64
	waiters       atomic.Int32 // callers waiting for a request in flight (tests read it)

	mu       sync.Mutex
	cached   *entry // nil when no usable token is cached
	call     *call  // the request in flight, nil if none
	rejected string // the last token value Invalidate dropped: dropped once only
}

// entry is a cached token.
type entry struct {
	tok       Token
	refreshAt time.Time
}

// call is one token request that several callers may wait for.
type call struct {
	done chan struct{} // closed when tok/err are set
	tok  Token
	err  error
}

// New checks c and returns a Source for it. It does no network I/O; for a
// certificate credential it reads and checks the certificate and key files.
// The error lists every problem found in c.
func New(c Credentials, opts *Options) (*Source, error) {
	c, err := c.validate()
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	s := &Source{
		creds:         c,
		tokenURL:      c.Authority + "/" + c.TenantID + "/oauth2/v2.0/token",
		hc:            opts.HTTPClient,
		log:           opts.Logger,
		refreshBefore: opts.RefreshBefore,
		now:           opts.Now,
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: requestTimeout}
	}
	s.hc = httpsafe.NoRedirects(s.hc)
	if s.log == nil {
		s.log = slog.Default()
	}
	if c.AllowHTTP {
		s.log.Warn("insecure_http is set: the token endpoint may be plain http on loopback; for tests only, never in production",
			"tenant", c.TenantID, "client_id", c.ClientID, "authority", c.Authority)
	}
	if s.refreshBefore <= 0 {
		s.refreshBefore = DefaultRefreshBefore
	}
	if s.now == nil {
		s.now = time.Now
	}
	if c.CertFile != "" {
		if s.cert, err = loadCertificate(c.CertFile, c.KeyFile); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Token returns a valid access token: the cached one while it is more than
// RefreshBefore from expiry, otherwise a new one. At most one request is in
// flight per Source; concurrent callers wait for it (each until its own ctx
// is done). If a refresh fails while the cached token has not yet expired,
// the cached token is returned and the failure logged as a warning.
//
// Errors are *Error for refusals by the token endpoint (see IsTransient and
// Error.Fix), or wrapped network, file and context errors.
func (s *Source) Token(ctx context.Context) (Token, error) {
	s.mu.Lock()
	if e := s.cached; e != nil && s.now().Before(e.refreshAt) {
		s.mu.Unlock()
		return e.tok, nil
	}
	c := s.call
	if c == nil {
		c = &call{done: make(chan struct{})}
		s.call = c
		go s.fetch(context.WithoutCancel(ctx), c)
	}
	s.mu.Unlock()

	s.waiters.Add(1)
	select {
	case <-c.done:
		s.waiters.Add(-1)
	case <-ctx.Done():
		s.waiters.Add(-1)
		return Token{}, fmt.Errorf("token for client %s: %w", s.creds.ClientID, ctx.Err())
	}
	if c.err == nil {
		return c.tok, nil
	}
	s.mu.Lock()
	e := s.cached
	s.mu.Unlock()
	if e != nil && s.now().Before(e.tok.Expiry) {
		s.log.Warn("token refresh failed, using the cached token until it expires",
			"tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "expiry", e.tok.Expiry, "err", c.err)
		return e.tok, nil
	}
	return Token{}, c.err
}

// fetch runs one token request for c and publishes its result.
func (s *Source) fetch(ctx context.Context, c *call) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	issued := s.now()
	tok, lifetime, err := s.request(ctx)
	s.mu.Lock()
	if err == nil {
		s.cached = &entry{tok: tok, refreshAt: refreshAt(issued, tok.Expiry, lifetime, s.refreshBefore)}
	}
	c.tok, c.err = tok, err
	s.call = nil
	s.mu.Unlock()
	close(c.done)
}

// refreshAt is when a token issued at issued with the given expiry and
// lifetime is replaced: refreshBefore ahead of its expiry, but never before
// half its lifetime has passed, so that a short lifetime costs at most two
// requests per lifetime rather than one per call.
func refreshAt(issued, expiry time.Time, lifetime, refreshBefore time.Duration) time.Time {
	at := expiry.Add(-refreshBefore)
	if half := issued.Add(lifetime / 2); at.Before(half) {
		at = half
	}
	return at
}

// Invalidate drops the cached token if it is still tok, so that the next
// Token call requests a new one. Call it when a server rejected tok. Each
// token value is dropped once: when many requests are rejected with the
// same token, or the endpoint hands out the rejected token again, only the
// first call has an effect, so rejections never turn into a storm of token
// requests.
func (s *Source) Invalidate(tok Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok.Value == "" || tok.Value == s.rejected {
		return
	}
	if s.cached != nil && s.cached.tok.Value == tok.Value {
		s.cached = nil
		s.rejected = tok.Value
		s.log.Debug("token invalidated", "tenant", s.creds.TenantID, "client_id", s.creds.ClientID)
	}
}

// Requests returns how many token requests this Source has sent.
func (s *Source) Requests() int64 { return s.requests.Load() }

// CertificateExpiry returns when the certificate credential expires (its
// NotAfter), and false when the Source does not use a certificate.
func (s *Source) CertificateExpiry() (time.Time, bool) {
	if s.cert == nil {
		return time.Time{}, false
	}
	return s.cert.cert.NotAfter, true
}

// String names the app without its credential.
func (s *Source) String() string {
	return fmt.Sprintf("auth.Source{tenant=%s client_id=%s credential=%s}", s.creds.TenantID, s.creds.ClientID, s.creds.kind())
}

// Format implements fmt.Formatter so that printing a *Source with any verb
// never shows its secret.
func (s *Source) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue implements slog.LogValuer.
func (s *Source) LogValue() slog.Value { return s.creds.LogValue() }
