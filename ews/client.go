package ews

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// DefaultURL is Exchange Online's EWS endpoint.
const DefaultURL = "https://outlook.office365.com/EWS/Exchange.asmx"

// Options configure a Client. The zero value of every field means its
// default.
type Options struct {
	// URL of Exchange.asmx; default DefaultURL.
	URL string
	// HTTPClient sends the requests; default http.DefaultClient. TLS
	// settings and timeouts come from the caller.
	HTTPClient *http.Client
	// Token returns an app-only bearer token for
	// https://outlook.office365.com/.default. The caller caches it.
	Token func(ctx context.Context) (string, error)
	// OnUnauthorized is called on HTTP 401 so the caller can drop its
	// cached token; nil: nothing is called.
	OnUnauthorized func()
	// MaxInFlight bounds concurrent requests of this client (one client per
	// app registration); default 10, Microsoft's advice (PROTOCOLS.md §4.5).
	MaxInFlight int
	// MaxResponseBytes bounds a response body; default 64 MiB. A larger
	// response is an error.
	MaxResponseBytes int64
	// Logger receives debug lines about requests; default slog.Default().
	// Tokens are never logged.
	Logger *slog.Logger
	// Version is sent as RequestServerVersion; default Exchange2013_SP1.
	Version string
}

// Client sends EWS requests. NewClient does no I/O; a Client is safe for
// concurrent use.
type Client struct {
	opts Options
	sem  chan struct{}
	log  *slog.Logger
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
	if opts.Version == "" {
		opts.Version = "Exchange2013_SP1"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Client{opts: opts, sem: make(chan struct{}, opts.MaxInFlight), log: log}
}

// call posts one SOAP request for mailbox and returns the operation's
// response element. SOAP faults and HTTP errors come back as
// *ResponseError.
func (c *Client) call(ctx context.Context, op, mailbox string, body []byte) (*node, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()

	if c.opts.Token == nil {
		return nil, errors.New("ews: Options.Token is nil")
	}
	tok, err := c.opts.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-AnchorMailbox", mailbox)
	start := time.Now()
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, err // *url.Error: method, URL and cause; no headers
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return nil, &limitError{limit: c.opts.MaxResponseBytes}
	}
	c.log.Debug("ews request", "op", op, "mailbox", mailbox, "status", resp.StatusCode,
		"bytes", len(data), "duration", time.Since(start))
	return c.response(resp, data)
}

// response interprets the status and body of one HTTP response.
func (c *Client) response(resp *http.Response, data []byte) (*node, error) {
	diag := resp.Header.Get("X-Ms-Diagnostics")
	switch st := resp.StatusCode; {
	case st == http.StatusUnauthorized:
		if c.opts.OnUnauthorized != nil {
			c.opts.OnUnauthorized()
		}
		return nil, unauthorized(resp.Header)
	case st == http.StatusForbidden:
		text := snippet(data)
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
	env, err := decodeEnvelope(bytes.NewReader(data))
	if err != nil {
		if resp.StatusCode != http.StatusOK {
			return nil, &ResponseError{Class: "HTTP", Code: fmt.Sprintf("HTTP%d", resp.StatusCode), HTTPStatus: resp.StatusCode,
				Diagnostics: diag, Message: http.StatusText(resp.StatusCode) + " " + snippet(data)}
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

// snippet is a short, single-line excerpt of a non-SOAP body for errors.
func snippet(data []byte) string {
	s := strings.Join(strings.Fields(string(data[:min(len(data), 300)])), " ")
	return strings.ToValidUTF8(s, "?")
}
