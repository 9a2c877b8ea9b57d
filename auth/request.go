package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mailpoller/mailpoller/internal/redact"
)

// maxResponse bounds how much of a token response is read: Entra's
// answers are a few KiB.
const maxResponse = 256 << 10

// Token lifetimes outside this range are clamped: it is the range Entra ID
// allows for configurable access-token lifetimes (10 minutes to 1 day). A
// shorter one would have callers renew all the time, a longer or
// overflowing one would keep a token far past its real end.
const (
	minLifetime = 10 * time.Minute
	maxLifetime = 24 * time.Hour
)

// tokenResponse is a successful token response (PROTOCOLS.md §1.1). It is
// read only when golang.org/x/oauth2 refused a 2xx answer, which it does
// for an expires_in that is not an integer (e.g. 1e20, "soon").
type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	ExpiresIn   seconds `json:"expires_in"`
}

// errorResponse holds the fields of Entra's error body (PROTOCOLS.md §1.1)
// that oauth2.RetrieveError does not parse: the AADSTS codes and the ids
// for a support case.
type errorResponse struct {
	ErrorCodes    []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// seconds is a JSON number of seconds that may also be sent as a string.
// Anything that is not a finite number (missing, null, "soon") reads as 0,
// which lifetime treats as "not said".
type seconds float64

// UnmarshalJSON accepts 3599 and "3599".
func (s *seconds) UnmarshalJSON(b []byte) error {
	*s = parseSeconds(strings.Trim(string(b), `"`))
	return nil
}

func parseSeconds(v string) seconds {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0
	}
	return seconds(n)
}

// secondsOf reads expires_in from oauth2.Token.Extra: a float64 from a
// JSON body, an int64, float64 or string from a form-encoded one.
func secondsOf(v any) seconds {
	switch n := v.(type) {
	case float64:
		return parseSeconds(strconv.FormatFloat(n, 'g', -1, 64))
	case int64:
		return seconds(n)
	case string:
		return parseSeconds(n)
	}
	return 0
}

// lifetime turns the response's expires_in into a duration within
// [minLifetime, maxLifetime]. When expires_in is missing, not a number or
// not positive, the token's own exp claim is used if it can be read, else
// minLifetime; clamped says whether the server's value was not used as is.
func lifetime(expiresIn seconds, token string, issued time.Time) (d time.Duration, clamped bool) {
	secs := float64(expiresIn)
	if secs <= 0 {
		if c, err := ParseClaims(token); err == nil && !c.Expiry.IsZero() {
			secs = c.Expiry.Sub(issued).Seconds()
		}
	}
	switch {
	case secs <= 0:
		return minLifetime, true
	case secs < minLifetime.Seconds():
		return minLifetime, true
	case secs > maxLifetime.Seconds():
		return maxLifetime, true
	}
	return time.Duration(secs * float64(time.Second)), float64(expiresIn) <= 0
}

// errTooLarge ends reading a response past maxResponse.
var errTooLarge = errors.New("token response too large")

// capture is the RoundTripper of one token request: it caps the response
// body at maxResponse and keeps the status, headers and the bytes it let
// through. golang.org/x/oauth2 reads up to 1 MiB and folds read errors
// into its message with %v, so without this the cap, a broken connection
// and a refused 2xx body could not be told apart.
type capture struct {
	base    http.RoundTripper
	resp    *http.Response
	body    bytes.Buffer
	tooBig  bool
	readErr error
}

// RoundTrip implements http.RoundTripper.
func (c *capture) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	c.resp = resp
	resp.Body = &cappedBody{rc: resp.Body, c: c}
	return resp, nil
}

// cappedBody reads at most maxResponse bytes of a response into its capture.
type cappedBody struct {
	rc io.ReadCloser
	c  *capture
	n  int
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.n >= maxResponse {
		// Read one byte more to tell "exactly the cap" from "over it".
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n == 0 && err != nil {
			if err != io.EOF {
				b.c.readErr = err
			}
			return 0, err
		}
		b.c.tooBig = true
		return 0, errTooLarge
	}
	if len(p) > maxResponse-b.n {
		p = p[:maxResponse-b.n]
	}
	n, err := b.rc.Read(p)
	b.n += n
	b.c.body.Write(p[:n])
	if err != nil && err != io.EOF {
		b.c.readErr = err
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// request sends one token request through golang.org/x/oauth2 and returns
// the token and its lifetime.
func (s *Source) request(ctx context.Context) (Token, time.Duration, error) {
	cfg, secrets, err := s.config()
	if err != nil {
		return Token{}, 0, err
	}
	base := s.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rec := &capture{base: base}
	hc := *s.hc // already refuses redirects
	hc.Transport = rec
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &hc)

	s.log.Debug("token requested", "tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "credential", s.creds.kind())
	s.requests.Add(1)
	start := s.now()
	ot, err := cfg.Token(ctx)

	var re *oauth2.RetrieveError
	var value string
	var expiresIn seconds
	switch {
	case rec.tooBig:
		e := s.badResponse(rec.resp, fmt.Sprintf("the response is larger than %d KiB", maxResponse>>10))
		e.Transient = rec.resp.StatusCode >= 500
		return Token{}, 0, e
	case rec.readErr != nil:
		return Token{}, 0, fmt.Errorf("token request for client %s: read response: %w", s.creds.ClientID, rec.readErr)
	case errors.As(err, &re):
		if re.Response.StatusCode >= 300 && re.Response.StatusCode < 400 {
			return Token{}, 0, s.redirected(re.Response, re.Response.Header.Get("Location"))
		}
		return Token{}, 0, scrub(s.failure(re), secrets)
	case err != nil && rec.resp == nil:
		// No response: a network, TLS or context error. The library
		// returns it as http.Client.Do did, without the request body.
		return Token{}, 0, fmt.Errorf("token request for client %s: %w", s.creds.ClientID, err)
	case err != nil:
		// A 2xx the library refused. Its message is not passed on: it
		// may quote the body.
		var tr tokenResponse
		if json.Unmarshal(rec.body.Bytes(), &tr) != nil {
			return Token{}, 0, scrub(s.badResponse(rec.resp, "the response is not valid token JSON"), secrets)
		}
		if tr.AccessToken == "" {
			return Token{}, 0, s.badResponse(rec.resp, "the response has no access_token")
		}
		value, expiresIn = tr.AccessToken, tr.ExpiresIn
	default:
		value, expiresIn = ot.AccessToken, secondsOf(ot.Extra("expires_in"))
	}
	// The library's Expiry is computed from time.Now and an int32; the
	// lifetime is taken from expires_in again, on the Source's clock.
	life, clamped := lifetime(expiresIn, value, start)
	if clamped {
		s.log.Warn("token endpoint sent an expires_in outside 10 minutes to 1 day (or none); using a clamped lifetime",
			"tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "expires_in", float64(expiresIn), "lifetime", life)
	}
	tok := Token{Value: value, Expiry: start.Add(life)}
	s.log.Debug("token acquired", "tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "expires_in", int64(life/time.Second))
	return tok, life, nil
}

// redirected is the *Error for a 3xx answer. Redirects are never followed,
// since the request carries the credential; the error names where the
// server pointed, without query or user info.
func (s *Source) redirected(resp *http.Response, loc string) *Error {
	where := "an unnamed location"
	if u, err := resp.Request.URL.Parse(loc); err == nil {
		where = redact.Secrets(u.Scheme + "://" + u.Host + u.EscapedPath())
	}
	return &Error{
		HTTPStatus:  resp.StatusCode,
		Code:        "redirect",
		Description: fmt.Sprintf("the token endpoint answered HTTP %d, redirecting to %s; the credential is never sent after a redirect", resp.StatusCode, where),
		Fix:         fmt.Sprintf("set authority to the identity platform's real base URL (%s redirects): e.g. %s", s.creds.Authority, AuthorityPublic),
	}
}

// config builds the client-credentials request: a client secret in the
// body, or a client assertion (a certificate assertion signed now, or the
// federated token file read now) in EndpointParams. It also returns the
// secret values it carries, so that they can be scrubbed from anything the
// server echoes back.
func (s *Source) config() (*clientcredentials.Config, []string, error) {
	cfg := &clientcredentials.Config{
		ClientID:  s.creds.ClientID,
		TokenURL:  s.tokenURL,
		Scopes:    []string{s.creds.Scope},
		AuthStyle: oauth2.AuthStyleInParams, // auto-detection would send a second request on every refusal
	}
	var assertion string
	switch {
	case s.creds.ClientSecret != "":
		cfg.ClientSecret = s.creds.ClientSecret
		return cfg, []string{cfg.ClientSecret}, nil
	case s.cert != nil:
		a, err := s.cert.assertion(s.creds.ClientID, s.tokenURL, s.now())
		if err != nil {
			return nil, nil, fmt.Errorf("token request for client %s: %w", s.creds.ClientID, err)
		}
		assertion = a
	default:
		a, err := readFederatedToken(s.creds.FederatedTokenFile)
		if err != nil {
			return nil, nil, err
		}
		assertion = a
	}
	cfg.EndpointParams = url.Values{
		"client_assertion_type": {assertionType},
		"client_assertion":      {assertion},
	}
	return cfg, []string{assertion}, nil
}

// readFederatedToken reads the workload identity token file; it is read on
// every request because the platform rotates it.
func readFederatedToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &Error{Code: "federated_token_file", Description: "read federated token file: " + err.Error(),
			Fix: "check federated_token_file (AZURE_FEDERATED_TOKEN_FILE): the file must exist and be readable by mailpoller"}
	}
	a := strings.TrimSpace(string(b))
	if a == "" {
		return "", &Error{Code: "federated_token_file", Description: "federated token file " + path + " is empty",
			Fix: "check that the platform projects a service-account token into federated_token_file"}
	}
	return a, nil
}

// failure turns the library's *oauth2.RetrieveError (a non-2xx answer, or
// a 2xx with an "error" field) into an *Error: the OAuth error and its
// description from the library, the AADSTS codes and ids from its Body.
func (s *Source) failure(re *oauth2.RetrieveError) *Error {
	resp := re.Response
	if re.ErrorCode != "" {
		var extra errorResponse
		_ = json.Unmarshal(re.Body, &extra) // a form-encoded body has none
		return newError(resp.StatusCode, re.ErrorCode, re.ErrorDescription, extra, resp.Header.Get("Retry-After"))
	}
	e := newError(resp.StatusCode, "", "", errorResponse{}, resp.Header.Get("Retry-After"))
	e.Description = fmt.Sprintf("unexpected HTTP %d response (%s) without an Entra error body", resp.StatusCode, contentType(resp))
	if !e.Transient {
		e.Fix = fmt.Sprintf("check authority: %s does not answer like an Entra ID token endpoint", s.tokenURL)
	}
	return e
}

// badResponse is the *Error for a 200 that carries no usable token.
func (s *Source) badResponse(resp *http.Response, what string) *Error {
	return &Error{
		HTTPStatus:  resp.StatusCode,
		Code:        "invalid_response",
		Description: fmt.Sprintf("%s (%s)", what, contentType(resp)),
		Fix:         fmt.Sprintf("check authority and any proxy: %s does not answer like an Entra ID token endpoint", s.tokenURL),
	}
}

func contentType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt == "" {
		return "no content type"
	}
	return mt
}

// scrub removes secrets the server may have echoed into e's text fields.
func scrub(e *Error, secrets []string) *Error {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for _, f := range []*string{&e.Code, &e.Description, &e.TraceID, &e.CorrelationID} {
			*f = strings.ReplaceAll(*f, sec, redacted)
			*f = strings.ReplaceAll(*f, url.QueryEscape(sec), redacted)
		}
	}
	return e
}
