// Package httpsafe holds the two rules every HTTP client of mailpoller
// that carries a credential follows: plain http only to loopback, and no
// redirects.
package httpsafe

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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

// CheckURL accepts an absolute https URL, and plain http only to a
// loopback host and only when allowHTTP is set (insecure_http, for test
// servers): otherwise what a request carries (carried: "the bearer
// token", "the password") would cross a network in the clear. example is
// a good URL for the error to suggest. The error names the URL's
// scheme and host only.
func CheckURL(raw string, allowHTTP bool, carried, example string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute https URL: use e.g. %s", raw, example)
	}
	switch host := u.Scheme + "://" + u.Host; {
	case u.Scheme == "https":
		return nil
	case u.Scheme != "http":
		return fmt.Errorf("%s must use https", host)
	case !IsLoopback(u.Hostname()):
		return fmt.Errorf("%s uses plain http to a non-loopback host, which would send %s unencrypted: use https", host, carried)
	case !allowHTTP:
		return fmt.Errorf("%s uses plain http, which would send %s unencrypted: use https "+
			"(for a test server on this machine only, set insecure_http: true on the account)", host, carried)
	}
	return nil
}
