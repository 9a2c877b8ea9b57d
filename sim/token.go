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
	"sync"
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

// The resources the token endpoint issues tokens for; each is the
// audience of its tokens and its scope is the resource + "/.default".
const (
	exchangeResource = "https://outlook.office365.com"
	graphResource    = "https://graph.microsoft.com"
)

// resourceRoles maps each resource of the simulated tenants to the roles
// an app holds on it.
var resourceRoles = map[string]func(*App) []string{
	exchangeResource: func(a *App) []string { return a.Roles },
	graphResource:    func(a *App) []string { return a.GraphRoles },
}

// tokenLifetime is that of every issued token: Entra's expires_in.
const tokenLifetime = 3599 * time.Second

var b64 = base64.RawURLEncoding

// errAudience is Verify's error for a token issued for another resource.
var errAudience = errors.New("token issued for another audience")

// TokenFault is an error the token endpoint answers instead of a token.
// Status ≥ 500 answers a bare HTTP error; otherwise an Entra JSON error.
type TokenFault struct {
	ClientID string `json:"client_id"` // only this app's requests; "" for any
	Status   int    `json:"status"`
	AADSTS   int    `json:"aadsts"`
	Error    string `json:"error"`
	Text     string `json:"text"`
}

// TokenServer plays Entra ID's token endpoint (client-credentials flow
// with a secret or a certificate assertion), issuing JWT-shaped app-only
// tokens signed with its own key whose aud is the requested resource and
// whose roles are the app's on that resource. Its methods are safe for
// concurrent use.
type TokenServer struct {
	dir *directory
	key []byte

	mu       sync.Mutex
	requests map[string]int // client id → token requests
	issued   []string       // every access token handed out
	faults   []TokenFault   // answered, one each, to the next requests
}

func newTokenServer(dir *directory) *TokenServer {
	t := &TokenServer{dir: dir, key: make([]byte, 32), requests: map[string]int{}}
	rand.Read(t.key)
	return t
}

// issue makes a JWT-shaped token for app on resource, signed with the
// server's key.
func (t *TokenServer) issue(app *App, resource string, roles []string) (string, Claims) {
	now := time.Now()
	c := Claims{
		Audience: resource, Issuer: "https://sts.windows.net/" + app.Tenant + "/",
		Tenant: app.Tenant, AppID: app.ClientID, ObjectID: app.objectID, Roles: roles,
		IssuedAt: now.Unix(), NotBef: now.Unix(), Exp: now.Add(tokenLifetime).Unix(), Version: "1.0",
	}
	header := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`))
	payload, _ := json.Marshal(c)
	unsigned := header + "." + b64.EncodeToString(payload)
	mac := hmac.New(sha256.New, t.key)
	mac.Write([]byte(unsigned))
	c.Expiry = time.Unix(c.Exp, 0)
	return unsigned + "." + b64.EncodeToString(mac.Sum(nil)), c
}

// Verify checks that the server issued token, that it has not expired and
// that its aud is audience (a trailing slash aside). A token for another
// audience returns its claims with an error.
func (t *TokenServer) Verify(token, audience string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	mac := hmac.New(sha256.New, t.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("bad signature")
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	c.Expiry = time.Unix(c.Exp, 0)
	if time.Now().After(c.Expiry) {
		return nil, errors.New("token expired")
	}
	if !strings.EqualFold(strings.TrimSuffix(c.Audience, "/"), audience) {
		return &c, fmt.Errorf("%w: %s, not %s", errAudience, c.Audience, audience)
	}
	return &c, nil
}

// Fail makes the next n token requests answer f.
func (t *TokenServer) Fail(f TokenFault, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for range n {
		t.faults = append(t.faults, f)
	}
}

// Leaked returns the first part of a token the server issued that text
// contains (any of its three dot-separated parts, each as long as a hash),
// or "" if none: for tests that assert tokens stay out of logs, errors and
// output.
func (t *TokenServer) Leaked(text string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tok := range t.issued {
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 16 && strings.Contains(text, part) {
				return part
			}
		}
	}
	return ""
}

// Requests counts the token requests an app made.
func (t *TokenServer) Requests(clientID string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests[clientID]
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

// takeFault counts a request of clientID and removes and returns the
// first injected fault meant for it, if any.
func (t *TokenServer) takeFault(clientID string) *TokenFault {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests[clientID]++
	for i, f := range t.faults {
		if f.ClientID == "" || strings.EqualFold(f.ClientID, clientID) {
			t.faults = slices.Delete(t.faults, i, i+1)
			return &f
		}
	}
	return nil
}

// scopeResource returns the one resource a client-credentials scope
// names, or the Entra error for the scope.
func (t *TokenServer) scopeResource(scope, tenant string) (resource string, code int, errName, text string) {
	fields := strings.Fields(scope)
	switch {
	case len(fields) == 0:
		return "", 900144, "invalid_request", "The request body must contain the following parameter: 'scope'."
	case len(fields) == 1 && !strings.HasSuffix(fields[0], "/.default"):
		return "", 1002012, "invalid_scope", fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
	}
	var resources []string
	for _, f := range fields {
		r, ok := strings.CutSuffix(f, "/.default")
		if !ok {
			return "", 70011, "invalid_scope", fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. One or more scopes in '%s' are not compatible with each other.", scope)
		}
		if r = strings.ToLower(strings.TrimSuffix(r, "/")); !slices.Contains(resources, r) {
			resources = append(resources, r)
		}
	}
	if len(resources) > 1 {
		return "", 700022, "invalid_scope", fmt.Sprintf("The provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)
	}
	if t.dir.roles(resources[0]) == nil {
		return "", 500011, "invalid_resource", fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", strings.TrimSuffix(fields[0], "/.default"), tenant)
	}
	return resources[0], 0, "", ""
}

// ServeHTTP is POST /{tenant}/oauth2/v2.0/token (client credentials).
func (t *TokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		writeTokenError(w, 400, 900144, "invalid_request", "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	if f := t.takeFault(clientID); f != nil {
		if f.Status >= 500 {
			http.Error(w, "Service Unavailable", f.Status)
			return
		}
		writeTokenError(w, max(f.Status, 400), f.AADSTS, f.Error, f.Text)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeTokenError(w, 400, 900144, "invalid_request", "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if t.dir.tenantID(tenant) == "" {
		writeTokenError(w, 400, 90002, "invalid_request", fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	app := t.dir.app(clientID)
	if app == nil || app.Tenant != t.dir.tenantID(tenant) {
		writeTokenError(w, 400, 700016, "unauthorized_client", fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clientID, tenant))
		return
	}
	resource, code, errName, text := t.scopeResource(r.PostForm.Get("scope"), tenant)
	if code != 0 {
		writeTokenError(w, 400, code, errName, text)
		return
	}
	switch {
	case r.PostForm.Get("client_assertion") != "":
		tokenURL := "https://" + r.Host + r.URL.Path
		if code, text := checkAssertion(app, r.PostForm.Get("client_assertion_type"), r.PostForm.Get("client_assertion"), tokenURL); code != 0 {
			writeTokenError(w, 401, code, "invalid_client", text)
			return
		}
	case r.PostForm.Get("client_secret") == "":
		writeTokenError(w, 401, 7000218, "invalid_client", "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	case r.PostForm.Get("client_secret") != app.Secret:
		writeTokenError(w, 401, 7000215, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+clientID+"'.")
		return
	case app.SecretExpired:
		writeTokenError(w, 401, 7000222, "invalid_client", "The provided client secret keys for app '"+clientID+"' are expired.")
		return
	}
	tok, c := t.issue(app, resource, t.dir.roles(resource)(app))
	t.mu.Lock()
	t.issued = append(t.issued, tok)
	t.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "expires_in": int(time.Until(c.Expiry).Seconds()), "ext_expires_in": int(time.Until(c.Expiry).Seconds()), "access_token": tok,
	})
}
