package sim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Claims are the parts of a simulator token the services check.
type Claims struct {
	Audience string    `json:"aud"`
	Issuer   string    `json:"iss"`
	Tenant   string    `json:"tid"`
	AppID    string    `json:"appid"`
	ObjectID string    `json:"oid"`
	Roles    []string  `json:"roles,omitempty"`
	IssuedAt int64     `json:"iat"`
	NotBef   int64     `json:"nbf"`
	Exp      int64     `json:"exp"`
	Version  string    `json:"ver"`
	Expiry   time.Time `json:"-"`
}

// exchangeResource is the audience of Exchange Online tokens.
const exchangeResource = "https://outlook.office365.com"

var b64 = base64.RawURLEncoding

// issue makes a JWT-shaped token signed with the simulator's key.
func (s *Sim) issue(app *App) (string, Claims) {
	now := time.Now()
	c := Claims{
		Audience: exchangeResource, Issuer: "https://sts.windows.net/" + app.Tenant + "/",
		Tenant: app.Tenant, AppID: app.ClientID, ObjectID: app.objectID, Roles: app.Roles,
		IssuedAt: now.Unix(), NotBef: now.Unix(), Exp: now.Add(s.tokenLifetime).Unix(), Version: "1.0",
	}
	header := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`))
	payload, _ := json.Marshal(c)
	unsigned := header + "." + b64.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(unsigned))
	c.Expiry = time.Unix(c.Exp, 0)
	return unsigned + "." + b64.EncodeToString(mac.Sum(nil)), c
}

// verify checks a token's signature, audience and lifetime.
func (s *Sim) verify(token string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("bad signature")
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	c.Expiry = time.Unix(c.Exp, 0)
	if time.Now().After(c.Expiry) {
		return nil, errors.New("token expired")
	}
	if strings.TrimSuffix(c.Audience, "/") != exchangeResource {
		return nil, fmt.Errorf("audience %s is not Exchange Online", c.Audience)
	}
	return &c, nil
}

// Verify checks a token the simulator issued (for test harnesses such as
// an introspection endpoint in front of another IMAP server).
func (s *Sim) Verify(token string) (*Claims, error) { return s.verify(token) }

// allowed reports whether the token's app holds role and may open mailbox.
func (s *Sim) allowed(c *Claims, role, mailbox string) bool {
	if c == nil || !slices.Contains(c.Roles, role) {
		return false
	}
	app := s.app(c.AppID)
	if app == nil || app.Tenant != c.Tenant {
		return false
	}
	mailbox = strings.ToLower(mailbox)
	if !s.store.HasMailbox(mailbox) || s.tenantOf(mailbox) != app.Tenant {
		return false
	}
	return slices.ContainsFunc(app.Mailboxes, func(m string) bool { return m == "*" || strings.EqualFold(m, mailbox) })
}

// tokenError is Entra's error response body.
type tokenError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	URI           string `json:"error_uri"`
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeTokenError(w http.ResponseWriter, status int, code int, errName, text string) {
	now := time.Now().UTC()
	te := tokenError{
		Error: errName, Codes: []int{code}, Timestamp: now.Format("2006-01-02 15:04:05Z"),
		TraceID: uuid(), CorrelationID: uuid(), URI: fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", code),
	}
	te.Description = fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
		code, text, te.TraceID, te.CorrelationID, now.Format("2006-01-02 15:04:05Z"))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(te)
}

// handleToken is POST /{tenant}/oauth2/v2.0/token (client credentials).
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	r.ParseForm()
	s.mu.Lock()
	delay := s.faults.tokenDelay
	var injected *TokenFault
	for i, f := range s.faults.token {
		if f.ClientID == "" || strings.EqualFold(f.ClientID, r.PostForm.Get("client_id")) {
			injected = &f
			s.faults.token = slices.Delete(s.faults.token, i, i+1)
			break
		}
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if err := r.ParseForm(); err != nil {
		writeTokenError(w, 400, 900144, "invalid_request", "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	s.mu.Lock()
	s.tokenRequests[clientID]++
	s.mu.Unlock()
	if injected != nil {
		if injected.Status >= 500 {
			http.Error(w, "Service Unavailable", injected.Status)
			return
		}
		writeTokenError(w, max(injected.Status, 400), injected.AADSTS, injected.Error, injected.Text)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeTokenError(w, 400, 900144, "invalid_request", "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if !s.hasTenant(tenant) {
		writeTokenError(w, 400, 90002, "invalid_request", fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	app := s.app(clientID)
	if app == nil || app.Tenant != s.tenantID(tenant) {
		writeTokenError(w, 400, 700016, "unauthorized_client", fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clientID, tenant))
		return
	}
	scope := r.PostForm.Get("scope")
	if !strings.HasSuffix(scope, "/.default") {
		writeTokenError(w, 400, 1002012, "invalid_scope", fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	}
	if strings.TrimSuffix(scope, "/.default") != exchangeResource {
		writeTokenError(w, 400, 500011, "invalid_resource", fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", strings.TrimSuffix(scope, "/.default"), tenant))
		return
	}
	switch {
	case r.PostForm.Get("client_assertion") != "":
		tokenURL := "https://" + r.Host + r.URL.Path
		if code, text := checkAssertion(app, r.PostForm.Get("client_assertion_type"), r.PostForm.Get("client_assertion"), tokenURL); code != 0 {
			writeTokenError(w, 401, code, "invalid_client", text)
			return
		}
	case r.PostForm.Get("client_assertion") == "" && r.PostForm.Get("client_secret") == "":
		writeTokenError(w, 401, 7000218, "invalid_client", "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	case r.PostForm.Get("client_assertion") == "" && r.PostForm.Get("client_secret") != app.Secret:
		writeTokenError(w, 401, 7000215, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+clientID+"'.")
		return
	case r.PostForm.Get("client_assertion") == "" && app.SecretExpired:
		writeTokenError(w, 401, 7000222, "invalid_client", "The provided client secret keys for app '"+clientID+"' are expired.")
		return
	}
	tok, c := s.issue(app)
	s.mu.Lock()
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "expires_in": int(time.Until(c.Expiry).Seconds()), "ext_expires_in": int(time.Until(c.Expiry).Seconds()), "access_token": tok,
	})
}

// LeakedToken returns the first part of a token the simulator issued that
// text contains (any of its three dot-separated parts, each as long as a
// hash), or "" if none: for tests that assert tokens stay out of logs,
// errors and output.
func (s *Sim) LeakedToken(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tok := range s.issued {
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 16 && strings.Contains(text, part) {
				return part
			}
		}
	}
	return ""
}

// TokenRequests counts the token requests an app made.
func (s *Sim) TokenRequests(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests[clientID]
}
