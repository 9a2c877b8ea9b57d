package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/auth"
)

// Tests of what the token request gains and keeps by going through
// golang.org/x/oauth2.

// TestFormEncodedErrorClassified: the AADSTS classification reads the
// error and error_description the library parsed, so a refusal in a
// form-encoded body is classified as well as a JSON one.
func TestFormEncodedErrorClassified(t *testing.T) {
	body := url.Values{
		"error":             {"invalid_client"},
		"error_description": {"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 11111111-2222-4333-8444-555555555555"},
	}.Encode()
	ae := tokenError(t, 401, "application/x-www-form-urlencoded", []byte(body), nil)
	if ae.AADSTS != 7000215 || ae.Code != "invalid_client" || ae.Transient || !strings.Contains(ae.Fix, "not its Secret ID") {
		t.Errorf("Error = %q, want permanent AADSTS7000215 invalid_client with its fix", ae.Error())
	}
	if ae.Description != "Invalid client secret provided." {
		t.Errorf("Description = %q, want the first line without the AADSTS prefix", ae.Description)
	}
}

// TestErrorIn200Classified: a 200 that carries an Entra error body (as
// some proxies send) is reported as that refusal, not as a bad response.
func TestErrorIn200Classified(t *testing.T) {
	ae := tokenError(t, 200, "application/json", readTestdata(t, "aadsts7000215.json"), nil)
	if ae.AADSTS != 7000215 || ae.Code != "invalid_client" || ae.Transient || len(ae.TraceID) != 36 {
		t.Errorf("Error = %q, want AADSTS7000215 with its trace id", ae.Error())
	}
}

// TestOneRequestPerRefusal: a refused secret costs one request; the
// library's auth-style probing (header first, then body) is not used.
func TestOneRequestPerRefusal(t *testing.T) {
	e := newEntra(t)
	c := e.creds()
	c.ClientSecret = "wrong"
	src, err := auth.New(c, &auth.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := src.Token(context.Background()); err == nil {
			t.Fatal("Token() with a wrong secret = nil error")
		}
	}
	forms := e.requests()
	if len(forms) != 3 || src.Requests() != 3 {
		t.Fatalf("server saw %d requests, Requests() = %d for 3 refused calls; want 3, 3", len(forms), src.Requests())
	}
	for _, f := range forms {
		if f.Get("client_secret") != "wrong" || f.Get("client_id") != testClient {
			t.Errorf("form %v, want client_id and client_secret in the body", f)
		}
	}
}

// TestEchoedBodyNeverInError: oauth2.RetrieveError's text quotes the whole
// response body; a body that echoes the request (secret or assertion) must
// not reach the error, whatever its status and shape.
func TestEchoedBodyNeverInError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("eyJfederated.echoed.token"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{200, 400, 500} {
		for _, kind := range []string{"secret", "federated"} {
			t.Run(fmt.Sprintf("%d %s", status, kind), func(t *testing.T) {
				e := newEntra(t)
				e.answer = func(w http.ResponseWriter, form url.Values) {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(status)
					fmt.Fprintf(w, "<html>you sent %s</html>", form.Encode())
				}
				c := e.creds()
				if kind == "federated" {
					c.ClientSecret, c.FederatedTokenFile = "", file
				}
				src, err := auth.New(c, &auth.Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				_, err = src.Token(context.Background())
				var ae *auth.Error
				if !errors.As(err, &ae) {
					t.Fatalf("Token() = %v, want *auth.Error", err)
				}
				assertNoLeak(t, "error", err.Error()+formatted(err), testSecret, "eyJfederated.echoed.token")
				if strings.Contains(err.Error(), "<html") {
					t.Errorf("error %q quotes the body", err)
				}
			})
		}
	}
}
