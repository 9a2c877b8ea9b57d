// Package httpsafe holds the two rules every HTTP client of mailpoller
// that carries a credential follows: plain http only to loopback, and no
// redirects.
package httpsafe

import (
	"net"
	"net/http"
	"strings"
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
