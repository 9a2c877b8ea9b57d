package graph

import (
	"bytes"
	"context"
	"encoding/json"
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

// Limits of the Client; Microsoft's are 4 concurrent requests per app and
// mailbox, and 10,000 requests per 10 minutes (../shared/graph/README.md).
const (
	// MailboxInFlight bounds the requests in flight for one mailbox.
	MailboxInFlight = 4
	// AppInFlight bounds the requests in flight for the whole app.
	AppInFlight = 20
	// maxJSONBytes bounds a JSON response: a delta page of 100 messages
	// with three properties each is a few tens of KiB.
	maxJSONBytes = 16 << 20
	// retries in place of a throttled or failed request whose wait is short.
	retries      = 3
	retryMaxWait = 30 * time.Second
	maxWait      = 15 * time.Minute
)

// minWait is the shortest wait after a 429 or 5xx; a variable for tests.
var minWait = time.Second

// Options configure a Client. The zero value of every field means its
// default.
type Options struct {
	// URL is Graph's base including the version, default DefaultURL. It
	// must be https unless AllowHTTP is set, and then only to loopback.
	URL string
	// AllowHTTP lets URL use plain http to a loopback host, for tests.
	AllowHTTP bool
	// HTTPClient sends the requests; it is copied and never follows
	// redirects (every request carries the bearer token).
	HTTPClient *http.Client
	// Logger receives the client's lines; default slog.Default().
	Logger *slog.Logger
	// Push, when set, subscribes the Sources' folders to change
	// notifications, so that new mail starts a delta sync at once instead
	// of at the next poll.
	Push *Push

	tokens source.Tokens
	scope  string
}

// Client sends Graph requests for one app registration. It is safe for
// concurrent use.
type Client struct {
	base string // without trailing slash
	hc   *http.Client
	err  error // why nothing may be sent, or nil
	log  *slog.Logger
	tok  source.Tokens
	scp  string
	app  chan struct{}
	push *Push

	mu    sync.Mutex
	boxes map[string]*box
}

// box is what the client keeps per mailbox: its requests in flight and
// the time before which Graph asked not to be called.
type box struct {
	sem   chan struct{}
	until time.Time
}

// NewClient returns a client; it does no I/O.
func NewClient(opts Options) *Client {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{base: strings.TrimRight(opts.URL, "/"), hc: httpsafe.NoRedirects(hc), log: log, tok: opts.tokens, scp: opts.scope,
		app: make(chan struct{}, AppInFlight), boxes: map[string]*box{}, push: opts.Push}
	if c.hc.Timeout <= 0 {
		c.hc.Timeout = 2 * time.Minute
	}
	if err := httpsafe.CheckURL(c.base, opts.AllowHTTP, "the bearer token", DefaultURL); err != nil {
		c.err = source.Permanent(fmt.Errorf("graph: server %w", err))
	}
	if opts.AllowHTTP {
		log.Warn("insecure_http is set: the Graph server may be plain http on loopback; for tests only, never in production")
	}
	return c
}

func (c *Client) box(mailbox string) *box {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boxes[mailbox]
	if b == nil {
		b = &box{sem: make(chan struct{}, MailboxInFlight)}
		c.boxes[mailbox] = b
	}
	return b
}

// hold waits for mailbox's back-off and a free slot of the mailbox and the
// app; release gives the slots back.
func (c *Client) hold(ctx context.Context, b *box) (release func(), err error) {
	c.mu.Lock()
	until := b.until
	c.mu.Unlock()
	if err := sleep(ctx, time.Until(until)); err != nil {
		return nil, err
	}
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case c.app <- struct{}{}:
	case <-ctx.Done():
		<-b.sem
		return nil, ctx.Err()
	}
	return func() { <-c.app; <-b.sem }, nil
}

// backOff makes every request for b wait d.
func (c *Client) backOff(b *box, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := time.Now().Add(d); t.After(b.until) {
		b.until = t
	}
}

// link checks that a URL Graph handed over (nextLink, deltaLink) points
// at the configured server, so the token goes nowhere else.
func (c *Client) link(raw string) (string, error) {
	if !strings.HasPrefix(raw, c.base+"/") {
		return "", fmt.Errorf("graph: the server handed over a link outside %s (%.80q): not following it with the token", c.base, redact.Secrets(raw))
	}
	return raw, nil
}

// request is one Graph call.
type request struct {
	method  string
	url     string // absolute, or a path below the base
	body    any    // JSON-encoded when not nil
	prefer  []string
	mailbox string
	op      string // for errors, e.g. "delta of Inbox"
}

// do sends r, retrying in place after short throttling waits and
// transient failures, and returns the response of a 2xx answer; its body
// is the caller's to close. Other answers are *Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	u := r.url
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		u = c.base + r.url
	}
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return nil, err
		}
	}
	b := c.box(r.mailbox)
	refreshed := false
	for attempt := 0; ; attempt++ {
		resp, tok, err := c.send(ctx, b, r, u, body)
		if err != nil {
			if ctx.Err() != nil || attempt >= retries {
				return nil, fmt.Errorf("graph %s %s: %w", r.op, r.mailbox, err)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		e := readError(resp, r)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			c.tok.Invalidate(c.scp, tok)
			refreshed = true
			continue
		case e.transient() && attempt < retries:
			d := e.wait
			if d == 0 {
				d = backoff(attempt)
			}
			c.backOff(b, d)
			if d <= retryMaxWait {
				// The next attempt's hold waits out the back-off.
				c.log.Debug("graph throttled or unavailable, retrying", "mailbox", r.mailbox, "status", e.Status, "code", e.Code, "retry_in", d)
				continue
			}
		}
		return nil, e
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func backoff(attempt int) time.Duration { return minWait << attempt }

// send makes one attempt; it returns the token it used.
func (c *Client) send(ctx context.Context, b *box, r request, u string, body []byte) (*http.Response, string, error) {
	release, err := c.hold(ctx, b)
	if err != nil {
		return nil, "", err
	}
	tok, _, err := c.tok.Token(ctx, c.scp)
	if err != nil {
		release()
		return nil, "", err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		release()
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Prefer", strings.Join(append([]string{`IdType="ImmutableId"`}, r.prefer...), ", "))
	resp, err := c.hc.Do(req)
	if err != nil {
		release()
		return nil, tok, redactURL(err)
	}
	resp.Body = &releaser{ReadCloser: resp.Body, release: release}
	return resp, tok, nil
}

// redactURL drops the query of the URL in a transport error: delta
// tokens are not secrets, but they are long and say nothing to a reader.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// releaser gives the request's slots back when its body is closed.
type releaser struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releaser) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

// getJSON sends r and decodes the JSON answer into v.
func (c *Client) getJSON(ctx context.Context, r request, v any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBytes+1))
	if err != nil {
		return fmt.Errorf("graph %s %s: read answer: %w", r.op, r.mailbox, err)
	}
	if len(data) > maxJSONBytes {
		return fmt.Errorf("graph %s %s: answer larger than %d MiB", r.op, r.mailbox, maxJSONBytes>>20)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("graph %s %s: decode answer: %w", r.op, r.mailbox, err)
	}
	return nil
}

// userPath is the path of mailbox's user.
func userPath(mailbox string) string { return "/users/" + url.PathEscape(mailbox) }
