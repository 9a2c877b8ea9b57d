package auth

import (
	"context"
	"encoding/json"
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

// tokenResponse is a successful token response (PROTOCOLS.md §1.1).
type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   seconds `json:"expires_in"`
}

// errorResponse is Entra's error body (PROTOCOLS.md §1.1).
type errorResponse struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}

// seconds is a JSON number of seconds that may also be sent as a string.
// Anything that is not a finite number (missing, null, "soon") reads as 0,
// which lifetime treats as "not said".
type seconds float64

// UnmarshalJSON accepts 3599 and "3599".
func (s *seconds) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseFloat(strings.Trim(string(b), `"`), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		n = 0
	}
	*s = seconds(n)
	return nil
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

// request sends one token request and returns the token and its lifetime.
func (s *Source) request(ctx context.Context) (Token, time.Duration, error) {
	form, secrets, err := s.form()
	if err != nil {
		return Token{}, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, 0, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	s.log.Debug("token requested", "tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "credential", s.creds.kind())
	s.requests.Add(1)
	start := s.now()
	resp, err := s.hc.Do(req)
	if err != nil {
		return Token{}, 0, fmt.Errorf("token request for client %s: %w", s.creds.ClientID, err)
	}
	defer resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return Token{}, 0, s.redirected(resp, loc)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return Token{}, 0, fmt.Errorf("token request for client %s: read response: %w", s.creds.ClientID, err)
	}
	if len(body) > maxResponse {
		e := s.badResponse(resp, fmt.Sprintf("the response is larger than %d KiB", maxResponse>>10))
		e.Transient = resp.StatusCode >= 500
		return Token{}, 0, e
	}
	if resp.StatusCode != http.StatusOK {
		return Token{}, 0, scrub(s.failure(resp, body), secrets)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return Token{}, 0, scrub(s.badResponse(resp, "the response is not valid token JSON"), secrets)
	}
	if tr.AccessToken == "" {
		return Token{}, 0, s.badResponse(resp, "the response has no access_token")
	}
	life, clamped := lifetime(tr.ExpiresIn, tr.AccessToken, start)
	if clamped {
		s.log.Warn("token endpoint sent an expires_in outside 10 minutes to 1 day (or none); using a clamped lifetime",
			"tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "expires_in", float64(tr.ExpiresIn), "lifetime", life)
	}
	tok := Token{Value: tr.AccessToken, Expiry: start.Add(life)}
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

// form builds the request body and returns the secret values it carries,
// so that they can be scrubbed from anything the server echoes back.
func (s *Source) form() (url.Values, []string, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {s.creds.ClientID},
		"scope":      {s.creds.Scope},
	}
	var secret string
	switch {
	case s.creds.ClientSecret != "":
		secret = s.creds.ClientSecret
		form.Set("client_secret", secret)
		return form, []string{secret}, nil
	case s.cert != nil:
		a, err := s.cert.assertion(s.creds.ClientID, s.tokenURL, s.now())
		if err != nil {
			return nil, nil, fmt.Errorf("token request for client %s: %w", s.creds.ClientID, err)
		}
		secret = a
	default:
		a, err := readFederatedToken(s.creds.FederatedTokenFile)
		if err != nil {
			return nil, nil, err
		}
		secret = a
	}
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", secret)
	return form, []string{secret}, nil
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

// failure turns a non-200 response into an *Error.
func (s *Source) failure(resp *http.Response, body []byte) *Error {
	var er errorResponse
	if err := json.Unmarshal(body, &er); err == nil && er.Error != "" {
		return newError(resp.StatusCode, er, resp.Header.Get("Retry-After"))
	}
	e := newError(resp.StatusCode, errorResponse{}, resp.Header.Get("Retry-After"))
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
