package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxResponse bounds how much of a token response is read.
const maxResponse = 1 << 20

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
type seconds int64

// UnmarshalJSON accepts 3599 and "3599".
func (s *seconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if str == "" || str == "null" {
		*s = 0
		return nil
	}
	n, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return fmt.Errorf("expires_in %s is not a number", b)
	}
	*s = seconds(n)
	return nil
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return Token{}, 0, fmt.Errorf("token request for client %s: read response: %w", s.creds.ClientID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Token{}, 0, scrub(s.failure(resp, body), secrets)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return Token{}, 0, scrub(s.badResponse(resp, "the response is not valid token JSON"), secrets)
	}
	switch {
	case tr.AccessToken == "":
		return Token{}, 0, s.badResponse(resp, "the response has no access_token")
	case tr.ExpiresIn <= 0:
		return Token{}, 0, s.badResponse(resp, "the response has no positive expires_in")
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	tok := Token{Value: tr.AccessToken, Expiry: start.Add(lifetime)}
	s.log.Debug("token acquired", "tenant", s.creds.TenantID, "client_id", s.creds.ClientID, "expires_in", int64(tr.ExpiresIn))
	return tok, lifetime, nil
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
