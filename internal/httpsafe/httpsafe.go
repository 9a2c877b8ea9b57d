// Package httpsafe holds the two rules every HTTP client of mailpoller
// that carries a credential follows: plain http only to loopback, and no
// redirects.
package httpsafe

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// IsLoopback reports whether host (no port) is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NoRedirects returns a copy of hc that hands a redirect response back to
// the caller instead of following it, so a request's credential goes
// nowhere but where it was sent. hc itself is not changed.
func NoRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// RetryAfter reads a Retry-After header (RFC 9110 §10.2.3): delay seconds
// or an HTTP date, as a wait from now of at most limit; a negative number
// or a date already past is 0. ok is false when the header is missing or
// unreadable.
func RetryAfter(h http.Header, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return time.Duration(min(max(n, 0), int64(limit/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), limit), true
}
