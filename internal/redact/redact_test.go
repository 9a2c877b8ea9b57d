package redact_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/internal/redact"
)

func TestSecrets(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJlLXZhbHVl"
	xoauth := base64.StdEncoding.EncodeToString([]byte("user=a@b.c\x01auth=Bearer " + jwt + "\x01\x01"))
	for _, tc := range []struct{ in, secret, keep string }{
		{"NO [AUTHENTICATIONFAILED] " + xoauth + " rejected", xoauth, "rejected"},
		{"invalid token " + jwt, jwt, "invalid token"},
		{"Authorization: Bearer opaque-token_123", "opaque-token_123", "Authorization: Bearer"},
		{"Basic dXNlcjpwYXNz failed", "dXNlcjpwYXNz", "failed"},
		{"client_secret=Zx8Q~abcdefghijklmnopqrstuvwxyz0123456789", "Zx8Q~abcdefghijklmnopqrstuvwxyz0123456789", "client_secret="},
	} {
		got := redact.Secrets(tc.in)
		if strings.Contains(got, tc.secret) || !strings.Contains(got, redact.Mark) {
			t.Errorf("Secrets(%q) = %q: secret still there", tc.in, got)
		}
		if !strings.Contains(got, tc.keep) {
			t.Errorf("Secrets(%q) = %q: lost %q", tc.in, got, tc.keep)
		}
	}
	for _, plain := range []string{
		"AUTHENTICATE failed.",
		"Request is throttled. Suggested Backoff Time: 500 milliseconds",
		"User is authenticated but not connected.",
	} {
		if got := redact.Secrets(plain); got != plain {
			t.Errorf("Secrets(%q) = %q, want unchanged", plain, got)
		}
	}
}

func TestURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://ops:s3cret@nats1:4222, tls://tok3n@nats2:4222", "nats://[redacted]@nats1:4222,tls://[redacted]@nats2:4222"},
		{"ops:s3cret@nats1:4222", "[redacted]@nats1:4222"},
	} {
		if got := redact.URLs(tc.in); got != tc.want {
			t.Errorf("URLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
