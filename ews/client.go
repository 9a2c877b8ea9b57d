package ews

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
	"github.com/mailpoller/mailpoller/internal/redact"
	"github.com/mailpoller/mailpoller/source"
)

// DefaultURL is Exchange Online's EWS endpoint.
const DefaultURL = "https://outlook.office365.com/EWS/Exchange.asmx"

// DefaultRequestTimeout bounds an ordinary request when Options.HTTPClient
// sets no Timeout of its own.
const DefaultRequestTimeout = 2 * time.Minute

// DefaultStreamIdleTimeout ends a streaming connection on which nothing
// (not even one of Exchange's keep-alive status messages) arrived for this
// long.
const DefaultStreamIdleTimeout = 5 * time.Minute

// Options configure a Client. The zero value of every field means its
// default.
type Options struct {
	// URL of Exchange.asmx; default DefaultURL. It must use https unless
	// AllowHTTP is set.
	URL string
	// AllowHTTP lets URL use plain http, and then only to a loopback host
	// (127.0.0.1, ::1, localhost). It is meant for tests against a local
	// server: NewClient logs a warning when it is set. Without it, every
	// request to an http URL fails with an error that matches
	// source.ErrPermanent, and nothing is sent.
	AllowHTTP bool
	// HTTPClient sends the requests; default http.DefaultClient. TLS
	// settings and timeouts come from the caller; a client without a
	// Timeout gets DefaultRequestTimeout. The Client works on copies that
	// never follow redirects (every request carries the bearer token), and
	// streams notifications on a copy without the Timeout (see
	// StreamIdleTimeout); the caller's client is not changed.
	HTTPClient *http.Client
	// Token returns an app-only bearer token for
	// https://outlook.office365.com/.default. The caller caches it.
	Token func(ctx context.Context) (string, error)
	// OnUnauthorized is called with the token Exchange refused (HTTP 401)
	// so the caller can drop it from its cache. It is called once per
	// refused token, however many requests carried it; nil: nothing is
	// called.
	OnUnauthorized func(token string)
	// MaxInFlight bounds concurrent requests of this client (one client per
	// app registration); default 10, Microsoft's advice (PROTOCOLS.md §4.5).
	MaxInFlight int
	// MaxResponseBytes bounds a response body; default 64 MiB. A larger
	// response is an error. GetItem with MIME content may be allowed more
	// by the Source, to fit one message of its MaxMessageBytes.
	MaxResponseBytes int64
	// StreamIdleTimeout ends a GetStreamingEvents connection on which
	// nothing arrived for this long; default DefaultStreamIdleTimeout.
	StreamIdleTimeout time.Duration
	// Logger receives debug lines about requests; default slog.Default().
	// Tokens are never logged.
	Logger *slog.Logger
	// Version is sent as RequestServerVersion; default Exchange2013_SP1.
	Version string
	// Login, when set, authenticates every request with a username and
	// password instead of a token (on-premises Exchange); Token and
	// OnUnauthorized are then not used.
	Login *Login
	// Delegate leaves the ExchangeImpersonation header out: the login
	// opens other mailboxes through its own permissions on them
	// (FullAccess), not through the ApplicationImpersonation role.
	Delegate bool
}

// Login is a username and password for Basic or NTLM authentication.
type Login struct {
	// Username is DOMAIN\user or user@domain (a UPN).
	Username, Password string
	// NTLM negotiates NTLM (Windows authentication) with
	// github.com/Azure/go-ntlmssp instead of sending Basic credentials.
	NTLM bool
}

// scheme names the login's authentication scheme.
func (l *Login) scheme() string {
	if l.NTLM {
		return "NTLM"
	}
	return "Basic"
}

// Client sends EWS requests. NewClient does no I/O; a Client is safe for
// concurrent use.
type Client struct {
	opts   Options
	hc     *http.Client // ordinary requests: no redirects, a Timeout
	stream *http.Client // GetStreamingEvents: no redirects, no Timeout
	err    error        // why no request may be sent (a refused URL), or nil
	sem    chan struct{}
	log    *slog.Logger

	mu       sync.Mutex
	rejected string // the last token a 401 refused, reported once
}

// NewClient returns a client with opts' defaults filled in.
func NewClient(opts Options) *Client {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 10
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 20
	}
	if opts.StreamIdleTimeout <= 0 {
		opts.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if opts.Version == "" {
		opts.Version = "Exchange2013_SP1"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{opts: opts, sem: make(chan struct{}, opts.MaxInFlight), log: log}
	c.hc, c.stream = derive(opts.HTTPClient)
	if opts.Login != nil && opts.Login.NTLM {
		for _, hc := range []*http.Client{c.hc, c.stream} {
			base := hc.Transport
			if base == nil {
				base = http.DefaultTransport
			}
			hc.Transport = newNTLMPool(base)
		}
	}
	carried := "the bearer token"
	if opts.Login != nil {
		carried = "the password"
	}
	c.err = checkURL(opts.URL, opts.AllowHTTP, carried)
	if opts.AllowHTTP {
		log.Warn("insecure_http is set: the EWS server may be plain http on loopback; for tests only, never in production",
			"server", redact.Secrets(hostOf(opts.URL)))
	}
	return c
}

// derive returns the clients for ordinary requests and for streaming: copies
// of hc that refuse redirects, the first with a Timeout.
func derive(hc *http.Client) (plain, stream *http.Client) {
	plain, stream = httpsafe.NoRedirects(hc), httpsafe.NoRedirects(hc)
	if plain.Timeout <= 0 {
		plain.Timeout = DefaultRequestTimeout
	}
	stream.Timeout = 0
	return plain, stream
}

// checkURL refuses URLs that would send the credentials in the clear.
func checkURL(raw string, allowHTTP bool, carried string) error {
	if err := httpsafe.CheckURL(raw, allowHTTP, carried, DefaultURL); err != nil {
		return source.Permanent(fmt.Errorf("ews: server %w", err))
	}
	return nil
}

// hostOf is scheme://host of a URL, for logs and errors.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	return u.Scheme + "://" + u.Host
}

// call posts one SOAP request for mailbox and returns the operation's
// response element. SOAP faults and HTTP errors come back as
// *ResponseError.
func (c *Client) call(ctx context.Context, op, mailbox string, body []byte) (*node, error) {
	return c.callLimit(ctx, op, mailbox, body, c.opts.MaxResponseBytes)
}

// callLimit is call with a response cap of limit bytes.
func (c *Client) callLimit(ctx context.Context, op, mailbox string, body []byte, limit int64) (*node, error) {
	if c.err != nil {
		return nil, c.err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()

	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := c.post(ctx, c.hc, mailbox, tok, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := &cappedReader{r: resp.Body, left: limit, limit: limit}
	n, err := c.response(resp, tok, r)
	c.log.Debug("ews request", "op", op, "mailbox", mailbox, "status", resp.StatusCode,
		"bytes", limit-r.left, "duration", time.Since(start))
	return n, err
}

// token is the bearer token for the next request, "" with a Login.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.opts.Login != nil {
		return "", nil
	}
	if c.opts.Token == nil {
		return "", errors.New("ews: Options.Token is nil")
	}
	tok, err := c.opts.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("get token: %w", err)
	}
	return tok, nil
}

// post sends one request with the token (or the login's credentials,
// which go-ntlmssp turns into an NTLM handshake). A redirect is not followed: it
// comes back as a *ResponseError naming where the server pointed.
func (c *Client) post(ctx context.Context, hc *http.Client, mailbox, tok string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	if l := c.opts.Login; l != nil {
		req.SetBasicAuth(l.Username, l.Password)
	} else {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("X-AnchorMailbox", mailbox)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err // *url.Error: method, URL and cause; no headers
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close()
		return nil, redirected(resp)
	}
	return resp, nil
}

// redirected is the error for a 3xx answer: the token is never sent after a
// redirect. It names the target without query or user info.
func redirected(resp *http.Response) *ResponseError {
	where := "an unnamed location"
	if u, err := resp.Request.URL.Parse(resp.Header.Get("Location")); err == nil && resp.Header.Get("Location") != "" {
		where = redact.Secrets(u.Scheme + "://" + u.Host + u.EscapedPath())
	}
	return &ResponseError{Class: "HTTP", Code: "Redirect", HTTPStatus: resp.StatusCode,
		Message: fmt.Sprintf("the server answered HTTP %d, redirecting to %s; requests carry the bearer token and never follow a redirect: "+
			"set server to the EWS endpoint's final URL", resp.StatusCode, where)}
}

// unauthorized reports a refused token to OnUnauthorized, once per token.
func (c *Client) unauthorized(tok string) {
	if c.opts.OnUnauthorized == nil {
		return
	}
	c.mu.Lock()
	first := tok != c.rejected
	c.rejected = tok
	c.mu.Unlock()
	if first {
		c.opts.OnUnauthorized(tok)
	}
}

// response interprets the status and body of one HTTP response. tok is
// the token the request carried.
func (c *Client) response(resp *http.Response, tok string, body io.Reader) (*node, error) {
	rawDiag := resp.Header.Get("X-Ms-Diagnostics")
	diag := redact.Secrets(rawDiag)
	switch st := resp.StatusCode; {
	case st == http.StatusUnauthorized && c.opts.Login != nil:
		return nil, loginRefused(c.opts.Login, resp.Header.Values("WWW-Authenticate"))
	case st == http.StatusUnauthorized:
		c.unauthorized(tok)
		return nil, unauthorized(rawDiag, diag)
	case st == http.StatusForbidden:
		head, _ := io.ReadAll(io.LimitReader(body, 4<<10))
		text := snippet(head)
		if resp.Header.Get("Restrict-Access-Confirm") != "" || ewsBlockedText(text) {
			return nil, blocked(st, text, diag)
		}
		return nil, &ResponseError{Class: "HTTP", Code: "ErrorAccessDenied", HTTPStatus: st, Diagnostics: diag,
			Message: "HTTP 403 Forbidden " + text}
	case st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests:
		code := "ServiceUnavailable"
		if st == http.StatusTooManyRequests {
			code = "TooManyRequests"
		}
		return nil, &ResponseError{Class: "HTTP", Code: code, HTTPStatus: st, Diagnostics: diag,
			BackOff: retryAfter(resp.Header, time.Now()), Message: "server busy, retry later"}
	}
	head := &headBuffer{}
	env, err := decodeEnvelope(io.TeeReader(body, head))
	if err != nil {
		var ol *overLimitError
		if errors.As(err, &ol) {
			return nil, ol
		}
		if resp.StatusCode != http.StatusOK {
			return nil, &ResponseError{Class: "HTTP", Code: fmt.Sprintf("HTTP%d", resp.StatusCode), HTTPStatus: resp.StatusCode,
				Diagnostics: diag, Message: http.StatusText(resp.StatusCode) + " " + snippet(head.b)}
		}
		return nil, err
	}
	if f := env.fault; f != nil {
		f.HTTPStatus, f.Diagnostics = resp.StatusCode, diag
		if f.Code == "ErrorAccessDenied" && ewsBlockedText(f.Message) {
			return nil, blocked(resp.StatusCode, f.Message, diag)
		}
		return nil, f
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ResponseError{Class: "HTTP", Code: fmt.Sprintf("HTTP%d", resp.StatusCode), HTTPStatus: resp.StatusCode,
			Diagnostics: diag, Message: http.StatusText(resp.StatusCode)}
	}
	return env.body, nil
}

// cappedReader reads at most limit bytes and then fails with an
// *overLimitError, so a response is parsed as it arrives and never costs
// more than its cap.
type cappedReader struct {
	r           io.Reader
	left, limit int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a body of exactly limit bytes from a larger one.
		var one [1]byte
		for {
			n, err := c.r.Read(one[:])
			if n > 0 {
				return 0, &overLimitError{what: fmt.Sprintf("larger than %d bytes", c.limit)}
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// headBuffer keeps the first bytes written to it, for error messages.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := 512 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// snippet is a short, single-line excerpt of a non-SOAP body for errors,
// scrubbed of anything shaped like a credential.
func snippet(data []byte) string {
	s := strings.Join(strings.Fields(string(data[:min(len(data), 300)])), " ")
	return redact.Secrets(strings.ToValidUTF8(s, "?"))
}
