package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
)

const (
	testTenant = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
	testClient = "3f2a6c1e-1111-4b2b-9c1d-0a1b2c3d4e5f"
	testSecret = "Qx8~secret+value/with=reserved&chars"
)

// entra is a loopback token endpoint that answers in Entra ID's shapes
// (PROTOCOLS.md §1.1).
type entra struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu      sync.Mutex
	forms   []url.Values
	served  int
	gate    chan struct{}                                // when set, each request waits for a value (or close)
	arrived chan struct{}                                // when set, gets a value as each request arrives
	answer  func(w http.ResponseWriter, form url.Values) // overrides the default answer
	check   func(form url.Values) error                  // extra request checks (assertions)
	expires any                                          // expires_in value; default 3599
}

func newEntra(t *testing.T) *entra {
	t.Helper()
	e := &entra{t: t, secret: testSecret, expires: 3599}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *entra) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	gate, arrived := e.gate, e.arrived
	e.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if r.Method != http.MethodPost || r.URL.Path != "/"+testTenant+"/oauth2/v2.0/token" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		e.fail(w, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'. (content type "+ct+")")
		return
	}
	if err := r.ParseForm(); err != nil {
		e.fail(w, 400, "invalid_request", 900144, "unparsable body")
		return
	}
	form := r.PostForm
	e.mu.Lock()
	e.forms = append(e.forms, form)
	answer, check, expires := e.answer, e.check, e.expires
	e.mu.Unlock()
	if answer != nil {
		answer(w, form)
		return
	}
	switch {
	case form.Get("grant_type") != "client_credentials":
		e.fail(w, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	case form.Get("client_id") != testClient:
		e.fail(w, 400, "unauthorized_client", 700016, "Application with identifier '"+form.Get("client_id")+"' was not found in the directory.")
		return
	case !strings.HasSuffix(form.Get("scope"), "/.default"):
		e.fail(w, 400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
		return
	}
	if form.Has("client_secret") {
		if form.Get("client_secret") != e.secret {
			e.fail(w, 401, "invalid_client", 7000215, "Invalid client secret provided.")
			return
		}
	} else {
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_assertion") == "" {
			e.fail(w, 401, "invalid_client", 7000218, "The request body must contain client_assertion or client_secret.")
			return
		}
		if check != nil {
			if err := check(form); err != nil {
				e.t.Errorf("client assertion: %v", err)
				e.fail(w, 401, "invalid_client", 700027, "Client assertion failed signature validation.")
				return
			}
		}
	}
	e.mu.Lock()
	e.served++
	n := e.served
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"token_type":     "Bearer",
		"expires_in":     expires,
		"ext_expires_in": expires,
		"access_token":   accessToken(n),
	})
}

// fail answers with Entra's error body.
func (e *entra) fail(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 11111111-2222-4333-8444-555555555555\r\nCorrelation ID: 66666666-7777-4888-9999-000000000000\r\nTimestamp: 2025-03-14 09:26:53Z", aadsts, desc),
		"error_codes":       []int{aadsts},
		"timestamp":         "2025-03-14 09:26:53Z",
		"trace_id":          "11111111-2222-4333-8444-555555555555",
		"correlation_id":    "66666666-7777-4888-9999-000000000000",
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func (e *entra) requests() []url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]url.Values(nil), e.forms...)
}

// accessToken builds the n-th JWT-shaped app-only Exchange token.
func accessToken(n int) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": "test"})
	p, _ := json.Marshal(map[string]any{
		"aud": "https://outlook.office365.com", "iss": "https://sts.windows.net/" + testTenant + "/",
		"iat": 1700000000, "nbf": 1700000000, "exp": 1700003900, "appid": testClient, "appidacr": "1",
		"oid": "9d8c7b6a-0000-4000-8000-000000000001", "tid": testTenant, "roles": []string{"IMAP.AccessAsApp"},
		"ver": "1.0", "n": n,
	})
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString([]byte(fmt.Sprintf("sig-%d", n)))
}

// creds returns secret credentials for e.
func (e *entra) creds() auth.Credentials {
	return auth.Credentials{Authority: e.srv.URL, TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret, AllowHTTP: true}
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
