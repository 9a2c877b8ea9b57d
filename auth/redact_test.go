package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/internal/logtest"
)

// formatted prints v every way a caller might.
func formatted(v any) string {
	var b strings.Builder
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&b, f+"\n", v)
	}
	fmt.Fprintf(&b, "%v %+v\n", []any{v}, struct{ V any }{v})
	fmt.Fprintln(&b, v)
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "v", v)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "v", v, slog.Group("g", "v", v))
	b.Write(logs.Bytes())
	j, _ := json.Marshal(v)
	b.Write(j)
	return b.String()
}

func assertNoLeak(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("%s shows a secret %q:\n%s", what, s, out)
		}
		if esc := url.QueryEscape(s); s != "" && strings.Contains(out, esc) {
			t.Errorf("%s shows a secret (URL-encoded):\n%s", what, out)
		}
	}
}

func TestFormattingNeverShowsSecrets(t *testing.T) {
	tok := auth.Token{Value: accessToken(7), Expiry: time.Now()}
	creds := auth.Credentials{TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret}
	for name, v := range map[string]any{
		"Token": tok, "*Token": &tok, "Credentials": creds, "*Credentials": &creds,
	} {
		out := formatted(v)
		assertNoLeak(t, name, out, testSecret, tok.Value)
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s output does not say [redacted]:\n%s", name, out)
		}
	}
	if tok.String() != "[redacted]" || tok.GoString() != "[redacted]" {
		t.Errorf("Token String/GoString = %q, %q; want [redacted]", tok.String(), tok.GoString())
	}
	if out := formatted(creds); !strings.Contains(out, testClient) || !strings.Contains(out, testTenant) {
		t.Errorf("Credentials output lost the ids:\n%s", out)
	}
	src, err := auth.New(creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, "*Source", formatted(src), testSecret)
}

func TestLogsAndErrorsNeverShowSecrets(t *testing.T) {
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEntra(t)
	clk := newClock()
	src, err := auth.New(e.creds(), &auth.Options{Logger: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"token requested", "token acquired", "tenant=" + testTenant, "client_id=" + testClient, "expires_in=3599"} {
		if !strings.Contains(out, want) {
			t.Errorf("debug log lacks %q:\n%s", want, out)
		}
	}
	// A server that echoes the secret back in its error must not make it
	// reach the error or the logs.
	e.answer = func(w http.ResponseWriter, form url.Values) {
		e.fail(w, 401, "invalid_client", 7000215, "Invalid client secret provided: "+form.Get("client_secret")+" / "+url.QueryEscape(form.Get("client_secret")))
	}
	clk.Add(3500 * time.Second) // in the refresh window: the failure is logged, the cached token returned
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("Token() before expiry = %v", err)
	}
	clk.Add(200 * time.Second)
	_, err = src.Token(context.Background())
	if err == nil {
		t.Fatal("Token() after expiry with a refusing server = nil error")
	}
	assertNoLeak(t, "error", err.Error()+formatted(err), testSecret, tok.Value)
	assertNoLeak(t, "logs", logs.String(), testSecret, tok.Value)
}

func TestLogsNeverShowAssertions(t *testing.T) {
	var logs logtest.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEntra(t)
	var seen string
	e.answer = func(w http.ResponseWriter, form url.Values) {
		seen = form.Get("client_assertion")
		e.fail(w, 400, "invalid_request", 70021, "No matching federated identity record found for presented assertion "+seen)
	}
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("eyJfederated.secret.token"), 0o600)
	src, err := auth.New(auth.Credentials{Authority: e.srv.URL, AllowHTTP: true, TenantID: testTenant, ClientID: testClient, FederatedTokenFile: file},
		&auth.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token(context.Background())
	if err == nil || seen != "eyJfederated.secret.token" {
		t.Fatalf("Token() = %v, server saw %q", err, seen)
	}
	assertNoLeak(t, "error and logs", err.Error()+logs.String(), seen)
}
