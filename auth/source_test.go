package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/internal/wait"
)

func TestTokenClientSecret(t *testing.T) {
	e := newEntra(t)
	clk := newClock()
	src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token() = %v", err)
	}
	if tok.Value != accessToken(1) {
		t.Errorf("Token().Value = %q, want the server's access_token", tok.Value)
	}
	if want := clk.Now().Add(3599 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("Token().Expiry = %v, want %v", tok.Expiry, want)
	}
	forms := e.requests()
	if len(forms) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(forms))
	}
	want := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {testClient},
		"scope":         {"https://outlook.office365.com/.default"},
		"client_secret": {testSecret},
	}
	for k, v := range want {
		if got := forms[0][k]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
	if len(forms[0]) != len(want) {
		t.Errorf("form has fields %v, want exactly %v", forms[0], want)
	}
	if got := src.Requests(); got != 1 {
		t.Errorf("Requests() = %d, want 1", got)
	}
	if _, ok := src.CertificateExpiry(); ok {
		t.Error("CertificateExpiry() ok = true for a secret credential")
	}
}

func TestTokenExpiresInAsString(t *testing.T) {
	e := newEntra(t)
	e.expires = "4000"
	clk := newClock()
	src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token() = %v", err)
	}
	if want := clk.Now().Add(4000 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("Token().Expiry = %v, want %v", tok.Expiry, want)
	}
}

func TestTokenConcurrentCallersShareOneRequest(t *testing.T) {
	e := newEntra(t)
	gate := make(chan struct{})
	e.gate = gate
	src, err := auth.New(e.creds(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	toks := make([]auth.Token, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = src.Token(context.Background())
		}()
	}
	wait.For(t, 10*time.Second, "all callers waiting for the request in flight", func() bool { return src.Waiters() == n })
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i].Value != accessToken(1) {
			t.Errorf("caller %d: Token() = %q, %v; want the first token", i, toks[i].Value, errs[i])
		}
	}
	if got := src.Requests(); got != 1 {
		t.Errorf("Requests() = %d after %d concurrent calls, want 1", got, n)
	}
	if _, err := src.Token(context.Background()); err != nil || src.Requests() != 1 {
		t.Errorf("cached Token() = %v, Requests() = %d; want nil, 1", err, src.Requests())
	}
}

func TestTokenRefreshesEarly(t *testing.T) {
	e := newEntra(t)
	clk := newClock()
	src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 3599 s lifetime, refresh 5 min early: cached until 3299 s.
	clk.Add(3298 * time.Second)
	if tok, err := src.Token(ctx); err != nil || tok.Value != first.Value || src.Requests() != 1 {
		t.Fatalf("Token() 1 s before the refresh point = %v (same token %v), Requests() = %d; want cached", err, tok.Value == first.Value, src.Requests())
	}
	clk.Add(2 * time.Second)
	second, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.Value == first.Value || src.Requests() != 2 {
		t.Errorf("Token() inside the refresh window: new token %v, Requests() = %d; want a new token, 2", second.Value != first.Value, src.Requests())
	}
}

func TestTokenRefreshBeforeOptionAndShortLifetime(t *testing.T) {
	e := newEntra(t)
	e.expires = 900 // shorter than twice RefreshBefore: half the lifetime is used
	clk := newClock()
	src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now, RefreshBefore: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(449 * time.Second)
	if _, err := src.Token(ctx); err != nil || src.Requests() != 1 {
		t.Fatalf("Token() at 449 s of 900 s: %v, Requests() = %d; want cached", err, src.Requests())
	}
	clk.Add(time.Second)
	if _, err := src.Token(ctx); err != nil || src.Requests() != 2 {
		t.Fatalf("Token() at 450 s of 900 s: %v, Requests() = %d; want a refresh", err, src.Requests())
	}
}

func TestInvalidate(t *testing.T) {
	e := newEntra(t)
	src, err := auth.New(e.creds(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, _ := src.Token(ctx)
	src.Invalidate(first)
	second, err := src.Token(ctx)
	if err != nil || second.Value == first.Value || src.Requests() != 2 {
		t.Fatalf("Token() after Invalidate = %v, new token %v, Requests() = %d; want a new token", err, second.Value != first.Value, src.Requests())
	}
	src.Invalidate(first) // stale: must not drop the newer token
	if third, err := src.Token(ctx); err != nil || third.Value != second.Value || src.Requests() != 2 {
		t.Errorf("Invalidate(old token) dropped the current one: Requests() = %d", src.Requests())
	}
}

func TestRefreshFailureKeepsValidToken(t *testing.T) {
	e := newEntra(t)
	clk := newClock()
	src, err := auth.New(e.creds(), &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.answer = func(w http.ResponseWriter, _ url.Values) { http.Error(w, "busy", http.StatusServiceUnavailable) }
	clk.Add(3400 * time.Second) // in the refresh window, not expired
	if tok, err := src.Token(ctx); err != nil || tok.Value != first.Value {
		t.Fatalf("Token() with a failing refresh before expiry = %v; want the cached token", err)
	}
	clk.Add(200 * time.Second) // now expired
	_, err = src.Token(ctx)
	if !auth.IsTransient(err) {
		t.Fatalf("Token() after expiry with the server at 503 = %v; want a transient error", err)
	}
	if src.Requests() != 3 {
		t.Errorf("Requests() = %d, want 3", src.Requests())
	}
}

func TestTokenCallerCancelDoesNotFailOthers(t *testing.T) {
	e := newEntra(t)
	gate := make(chan struct{})
	e.gate = gate
	src, err := auth.New(e.creds(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := src.Token(ctx); first <- err }()
	second := make(chan error, 1)
	go func() { _, err := src.Token(context.Background()); second <- err }()
	wait.For(t, 10*time.Second, "two callers waiting", func() bool { return src.Waiters() == 2 })
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("Token() with a cancelled ctx = %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-second; err != nil {
		t.Errorf("Token() of the other caller = %v, want success", err)
	}
	if src.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", src.Requests())
	}
}
