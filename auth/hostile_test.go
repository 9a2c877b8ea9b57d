package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/internal/logtest"
)

// Tests against token endpoints that misbehave on purpose.

// TestTokenLifetimeRangeChecked: an expires_in that is too short, missing,
// not positive or overflowing never has every Token call send a request:
// over 2,000 calls spread over 2,000 s there is at most one request per
// 5 minutes, and each Expiry lies between 10 minutes and a day ahead.
func TestTokenLifetimeRangeChecked(t *testing.T) {
	for name, expires := range map[string]any{
		"30": 30, "0": 0, "-5": -5, "1e20": 1e20, "string 1e20": "1e20", "missing": nil, "garbage": "soon",
		"NaN": "NaN", "3599 (control)": 3599,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEntra(t)
			var mu sync.Mutex
			served := 0
			e.answer = func(w http.ResponseWriter, _ url.Values) {
				mu.Lock()
				served++
				n := served
				mu.Unlock()
				body := map[string]any{"token_type": "Bearer", "access_token": accessToken(n)}
				if expires != nil {
					body["expires_in"] = expires
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(body)
			}
			clk := newClock()
			src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			const calls = 2000
			for i := range calls {
				issued := clk.Now()
				tok, err := src.Token(context.Background())
				if err != nil {
					t.Fatalf("call %d: Token() = %v", i, err)
				}
				if left := tok.Expiry.Sub(issued); left <= 0 || left > 24*time.Hour {
					t.Fatalf("call %d: Expiry %v is %v from now, want within (0, 24h]", i, tok.Expiry, left)
				}
				clk.Add(time.Second)
			}
			// 2,000 s at one request per 5 minutes at most: 7 requests.
			if got := src.Requests(); got > 8 || got < 1 {
				t.Errorf("expires_in %v: %d token requests for %d calls over %d s, want at most 8", expires, got, calls, calls)
			}
			t.Logf("expires_in %v: %d token requests for %d calls", expires, src.Requests(), calls)
		})
	}
}

// TestTokenLifetimeClampedExpiry checks the Expiry of clamped lifetimes.
func TestTokenLifetimeClampedExpiry(t *testing.T) {
	for expires, want := range map[any]time.Duration{30: 10 * time.Minute, -5: 10 * time.Minute, 1e20: 24 * time.Hour, 7200: 2 * time.Hour} {
		e := newEntra(t)
		e.expires = expires
		clk := newClock()
		src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Expiry.Sub(clk.Now()); got != want {
			t.Errorf("expires_in %v: Expiry in %v, want %v", expires, got, want)
		}
	}
}

// TestTokenRedirectNotFollowed: a token endpoint answering 307 or 308 to
// another host or to plain http never gets the secret re-posted there. The
// catching server sees no request at all, and the error names where the
// redirect pointed without its query.
func TestTokenRedirectNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var caught []string
	catcher := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		caught = append(caught, r.URL.String()+" "+r.PostForm.Encode())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"stolen"}`)
	}))
	t.Cleanup(catcher.Close)
	port := catcher.URL[strings.LastIndexByte(catcher.URL, ':')+1:]
	for _, tc := range []struct {
		name   string
		status int
		to     string
		https  bool
	}{
		{"307 to another host", http.StatusTemporaryRedirect, "http://localhost:" + port + "/evil/token", false},
		{"308 https to plain http", http.StatusPermanentRedirect, catcher.URL + "/evil/token", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tc.to+"?client_secret=leak&code=x", tc.status)
			})
			c := auth.Credentials{TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret}
			var hc *http.Client
			if tc.https {
				srv := httptest.NewTLSServer(handler)
				t.Cleanup(srv.Close)
				c.Authority, hc = srv.URL, srv.Client()
			} else {
				srv := httptest.NewServer(handler)
				t.Cleanup(srv.Close)
				c.Authority, c.AllowHTTP = srv.URL, true
			}
			src, err := auth.New(c, &auth.Options{HTTPClient: hc, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Token(context.Background())
			var ae *auth.Error
			if !errors.As(err, &ae) || ae.Code != "redirect" || ae.Transient {
				t.Fatalf("Token() = %v, want a permanent redirect error", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.to) || strings.Contains(msg, "leak") || strings.Contains(msg, testSecret) {
				t.Errorf("error %q should name %s without the query or the secret", msg, tc.to)
			}
			if hc != nil && hc.CheckRedirect != nil {
				t.Error("the caller's http.Client was changed")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(caught) != 0 {
				t.Errorf("the catching server got %d requests: %q", len(caught), caught)
			}
		})
	}
}

// TestTokenResponseCapped: a token endpoint that streams an endless body
// costs at most its cap (256 KiB) to read, and the error says so.
func TestTokenResponseCapped(t *testing.T) {
	e := newEntra(t)
	chunk := []byte(`{"access_token":"` + strings.Repeat("A", 64<<10))
	e.answer = func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		for range 1 << 14 { // 1 GiB unless the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	src, err := auth.New(e.creds(), &auth.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = src.Token(context.Background())
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "larger than 256 KiB") {
		t.Fatalf("Token() = %v, want a response-too-large error", err)
	}
	// The server's writes are counted too; the client reads 256 KiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("reading the endless token response allocated %d MiB, want under 16", alloc>>20)
	} else {
		t.Logf("allocated %d KiB while the server offered 1 GiB", alloc>>10)
	}
}

// TestInvalidateOncePerToken: an endpoint that keeps handing out the token
// a server rejected gets one new request for it, not one per rejection.
func TestInvalidateOncePerToken(t *testing.T) {
	e := newEntra(t)
	e.answer = func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"access_token":%q}`, accessToken(1))
	}
	src, err := auth.New(e.creds(), &auth.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		src.Invalidate(tok) // the server refused it again
	}
	if got := src.Requests(); got != 2 {
		t.Errorf("Requests() = %d after 50 rejections of one token, want 2 (the first and one renewal)", got)
	}
}

// TestInsecureHTTPOptIn: a plain-http authority is refused unless
// AllowHTTP is set, and allowing it logs a warning once.
func TestInsecureHTTPOptIn(t *testing.T) {
	e := newEntra(t)
	c := e.creds()
	c.AllowHTTP = false
	if _, err := auth.New(c, nil); err == nil || !strings.Contains(err.Error(), "insecure_http: true") {
		t.Errorf("New(http authority) = %v, want a refusal naming insecure_http", err)
	}
	var logs logtest.Buffer
	c.AllowHTTP = true
	src, err := auth.New(c, &auth.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := src.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"insecure_http is set"); n != 1 {
		t.Errorf("%d insecure_http warnings, want 1:\n%s", n, logs.String())
	}
	if len(e.requests()) != 1 {
		t.Errorf("server saw %d requests, want 1", len(e.requests()))
	}
}
