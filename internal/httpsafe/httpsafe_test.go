package httpsafe_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"10.0.0.1": false, "example.com": false, "localhost.example.com": false, "": false} {
		if got := httpsafe.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestNoRedirects(t *testing.T) {
	caught := 0
	catcher := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { caught++ }))
	defer catcher.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, catcher.URL, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	orig := &http.Client{}
	resp, err := httpsafe.NoRedirects(orig).Get(redirector.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || caught != 0 {
		t.Errorf("status %d, catcher saw %d requests; want 307 and 0", resp.StatusCode, caught)
	}
	if orig.CheckRedirect != nil {
		t.Error("NoRedirects changed the caller's client")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"soon", 0, false},
		{"7", 7 * time.Second, true},
		{"-3", 0, true},
		{"99999999999999999999", time.Minute, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		h := http.Header{}
		if c.v != "" {
			h.Set("Retry-After", c.v)
		}
		if d, ok := httpsafe.RetryAfter(h, now, time.Minute); d != c.want || ok != c.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", c.v, d, ok, c.want, c.ok)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url   string
		allow bool
		want  string // in the error; "" for none
	}{
		{"https://mail.contoso.com/EWS/Exchange.asmx", false, ""},
		{"http://127.0.0.1:8080/x", true, ""},
		{"http://127.0.0.1:8080/x", false, "set insecure_http: true"},
		{"http://mail.contoso.com/x", true, "non-loopback host, which would send the password"},
		{"ftp://mail.contoso.com/x", true, "must use https"},
		{"mail.contoso.com", false, "not an absolute https URL: use e.g. https://example.test"},
	} {
		err := httpsafe.CheckURL(c.url, c.allow, "the password", "https://example.test")
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckURL(%q, %v) = %v, want %q", c.url, c.allow, err, c.want)
		}
	}
}
