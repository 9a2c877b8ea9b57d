package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/auth"
)

// tokenError runs one token request against a server that answers with
// status, header and body, and returns the resulting *auth.Error.
func tokenError(t *testing.T, status int, contentType string, body []byte, header map[string]string) *auth.Error {
	t.Helper()
	e := newEntra(t)
	e.answer = func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", contentType)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write(body)
	}
	src, err := auth.New(e.creds(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token(context.Background())
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("Token() = %v, want *auth.Error", err)
	}
	return ae
}

func TestErrorFixtures(t *testing.T) {
	tests := []struct {
		file      string
		status    int
		code      string
		aadsts    int
		transient bool
		fix       string // substring of Fix
		desc      string // prefix of Description
	}{
		{"aadsts7000215.json", 401, "invalid_client", 7000215, false, "not its Secret ID", "Invalid client secret provided."},
		{"aadsts7000222.json", 401, "invalid_client", 7000222, false, "create a new secret", "The provided client secret keys"},
		{"aadsts700016.json", 400, "unauthorized_client", 700016, false, "admin consent", "Application with identifier"},
		{"aadsts90002.json", 400, "invalid_request", 90002, false, "check tenant_id", "Tenant 'contoso.onmicrosft.com' not found."},
		{"aadsts500011.json", 400, "invalid_resource", 500011, false, "https://outlook.office365.com/.default", "The resource principal"},
		{"aadsts1002012.json", 400, "invalid_scope", 1002012, false, "/.default", "The provided value for scope"},
		{"aadsts70011.json", 400, "invalid_scope", 70011, false, "/.default", "The provided request must include"},
		{"aadsts700027.json", 401, "invalid_client", 700027, false, "upload this certificate", "Client assertion failed"},
		{"aadsts70021.json", 400, "invalid_request", 70021, false, "federated identity credential", "No matching federated identity record"},
		{"aadsts53003.json", 400, "access_denied", 53003, false, "Conditional Access", "Access has been blocked by Conditional Access policies."},
		{"aadsts7000112.json", 400, "unauthorized_client", 7000112, false, "disabled", "Application '3f2a6c1e"},
		{"aadsts50196.json", 400, "invalid_request", 50196, true, "loop", "The server terminated an operation"},
		{"aadsts90055.json", 429, "temporarily_unavailable", 90055, true, "throttled", "The tenant is being throttled"},
		{"aadsts90033.json", 503, "temporarily_unavailable", 90033, true, "temporary", "A transient error has occurred."},
		{"aadsts999999.json", 400, "invalid_request", 999999, false, "error?code=999999", "Something unusual"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ae := tokenError(t, tt.status, "application/json; charset=utf-8", readTestdata(t, tt.file), nil)
			if ae.HTTPStatus != tt.status || ae.Code != tt.code || ae.AADSTS != tt.aadsts || ae.Transient != tt.transient {
				t.Errorf("Error = {status %d, code %q, AADSTS %d, transient %v}, want {%d, %q, %d, %v}",
					ae.HTTPStatus, ae.Code, ae.AADSTS, ae.Transient, tt.status, tt.code, tt.aadsts, tt.transient)
			}
			if !strings.Contains(ae.Fix, tt.fix) {
				t.Errorf("Fix = %q, want it to mention %q", ae.Fix, tt.fix)
			}
			if !strings.HasPrefix(ae.Description, tt.desc) {
				t.Errorf("Description = %q, want prefix %q", ae.Description, tt.desc)
			}
			for _, bad := range []string{"Trace ID", "Correlation ID", "Timestamp", "AADSTS", "\n", "\r"} {
				if strings.Contains(ae.Description, bad) {
					t.Errorf("Description = %q contains %q", ae.Description, bad)
				}
			}
			if len(ae.TraceID) != 36 || len(ae.CorrelationID) != 36 {
				t.Errorf("TraceID, CorrelationID = %q, %q; want the GUIDs from the body", ae.TraceID, ae.CorrelationID)
			}
			wantPrefix := fmt.Sprintf("token: AADSTS%d %s: %s", tt.aadsts, tt.code, ae.Description)
			msg := ae.Error()
			if !strings.HasPrefix(msg, wantPrefix) || !strings.Contains(msg, ": fix: "+ae.Fix) || !strings.Contains(msg, ae.TraceID) {
				t.Errorf("Error() = %q, want %q…: fix: %s (trace_id=…)", msg, wantPrefix, ae.Fix)
			}
			if auth.IsTransient(fmt.Errorf("connect: %w", ae)) != tt.transient {
				t.Errorf("IsTransient(wrapped) = %v, want %v", !tt.transient, tt.transient)
			}
		})
	}
}

// TestEveryClassifiedCode sends each AADSTS code of the table through a real
// request and checks its treatment: only throttling and server trouble are
// transient; every code carries a fix.
func TestEveryClassifiedCode(t *testing.T) {
	transient := []int{90055, 50196, 90024, 50033, 90006, 90033, 90090}
	mustHave := []int{7000215, 7000222, 7000218, 70002, 700016, 700011, 90002, 900023, 50049, 90038, 500011,
		70011, 1002012, 700022, 700023, 900144, 65001, 90094, 650056, 650057, 7000112, 70001, 700025, 700027,
		50012, 50013, 500133, 70021, 700213, 7002137, 7002138, 53003, 530035, 530032, 9001023, 90130, 90124, 50194}
	codes := auth.ClassifiedCodes()
	for _, c := range append(slices.Clone(transient), mustHave...) {
		if !slices.Contains(codes, c) {
			t.Errorf("AADSTS%d is not classified", c)
		}
	}
	generic := tokenError(t, 400, "application/json", []byte(`{"error":"invalid_request","error_codes":[1]}`), nil).Fix
	for _, c := range codes {
		body := fmt.Sprintf(`{"error":"invalid_request","error_description":"AADSTS%d: Something.\r\nTrace ID: x","error_codes":[%d],"trace_id":"t","correlation_id":"c"}`, c, c)
		ae := tokenError(t, 400, "application/json", []byte(body), nil)
		if want := slices.Contains(transient, c); ae.Transient != want {
			t.Errorf("AADSTS%d: Transient = %v, want %v", c, ae.Transient, want)
		}
		if ae.AADSTS != c || ae.Fix == "" || ae.Fix == generic {
			t.Errorf("AADSTS%d: AADSTS = %d, Fix = %q; want the code and a specific fix", c, ae.AADSTS, ae.Fix)
		}
	}
}

func TestServerTroubleIsTransient(t *testing.T) {
	t.Run("502 html", func(t *testing.T) {
		ae := tokenError(t, 502, "text/html", readTestdata(t, "gateway-502.html"), nil)
		if !ae.Transient || ae.HTTPStatus != 502 || strings.Contains(ae.Error(), "<html") {
			t.Errorf("Error = %+v (%q); want transient HTTP 502 without the HTML", ae, ae.Error())
		}
	})
	t.Run("503 temporarily_unavailable", func(t *testing.T) {
		ae := tokenError(t, 503, "application/json", []byte(`{"error":"temporarily_unavailable","error_description":"The service is unavailable."}`), nil)
		if !ae.Transient || ae.Code != "temporarily_unavailable" {
			t.Errorf("Error = %q, want transient temporarily_unavailable", ae.Error())
		}
	})
	t.Run("400 temporarily_unavailable", func(t *testing.T) {
		ae := tokenError(t, 400, "application/json", []byte(`{"error":"temporarily_unavailable"}`), nil)
		if !ae.Transient {
			t.Errorf("Error = %q, want transient", ae.Error())
		}
	})
	t.Run("429 retry-after", func(t *testing.T) {
		ae := tokenError(t, 429, "text/plain", []byte("slow down"), map[string]string{"Retry-After": "30"})
		if !ae.Transient || ae.RetryAfter.Seconds() != 30 {
			t.Errorf("Error = %+v, want transient with RetryAfter 30s", ae)
		}
	})
	t.Run("404 wrong authority", func(t *testing.T) {
		ae := tokenError(t, 404, "text/html", []byte("<html>not here</html>"), nil)
		if ae.Transient || !strings.Contains(ae.Fix, "authority") {
			t.Errorf("Error = %q, want a permanent error pointing at authority", ae.Error())
		}
	})
}

func TestMalformedSuccess(t *testing.T) {
	for name, body := range map[string]string{
		"truncated json":  `{"token_type":"Bearer","expires_in":3599,"access_tok`,
		"html":            `<html>login page</html>`,
		"no access_token": `{"token_type":"Bearer","expires_in":3599}`,
	} {
		t.Run(name, func(t *testing.T) {
			ae := tokenError(t, 200, "application/json", []byte(body), nil)
			if ae.Code != "invalid_response" || ae.HTTPStatus != 200 || ae.Fix == "" || ae.Transient {
				t.Errorf("Error = %+v, want a permanent invalid_response with a fix", ae)
			}
		})
	}
}

func TestNetworkErrorIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c := auth.Credentials{Authority: "http://" + addr, AllowHTTP: true, TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret}
	src, err := auth.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token(context.Background())
	if err == nil || !auth.IsTransient(err) {
		t.Fatalf("Token() against a closed port = %v, want a transient error", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error %q contains the secret", err)
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("config: bad"), false},
		{context.Canceled, false},
		{fmt.Errorf("token: %w", context.DeadlineExceeded), true},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{&auth.Error{Transient: true}, true},
		{&auth.Error{Transient: false}, false},
	}
	for _, tt := range tests {
		if got := auth.IsTransient(tt.err); got != tt.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestWrongSecretAgainstServer(t *testing.T) {
	e := newEntra(t)
	c := e.creds()
	c.ClientSecret = "c0ffee00-1111-4222-8333-444455556666" // a Secret ID pasted instead of the Value
	src, err := auth.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token(context.Background())
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.AADSTS != 7000215 || ae.Transient || ae.HTTPStatus != 401 {
		t.Fatalf("Token() with a wrong secret = %v, want permanent AADSTS7000215", err)
	}
}

func TestUntrustedTLSIsNotTransient(t *testing.T) {
	e := newEntra(t)
	tlsSrv := httptest.NewTLSServer(e.srv.Config.Handler)
	t.Cleanup(tlsSrv.Close)
	c := e.creds()
	c.Authority = tlsSrv.URL

	src, err := auth.New(c, nil) // default client: does not trust the test CA
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(context.Background()); err == nil || auth.IsTransient(err) {
		t.Errorf("Token() against an untrusted certificate = %v, want a permanent error", err)
	}

	src, err = auth.New(c, &auth.Options{HTTPClient: tlsSrv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(context.Background()); err != nil {
		t.Errorf("Token() over https with the CA trusted = %v", err)
	}
}
