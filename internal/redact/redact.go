// Package redact scrubs text that came from a server (an IMAP status line,
// an HTTP error body) of anything shaped like a credential before it is put
// in an error, a log line or /status: JWTs, Bearer and Basic values, and
// long base64 runs such as an XOAUTH2 initial response echoed back.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces what was scrubbed.
const Mark = "[redacted]"

var (
	// scheme-prefixed credentials: "Bearer abc", "Basic abc", "auth=Bearer abc".
	schemeRE = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)
	// JWT-shaped: three base64url parts, the first starting with eyJ.
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*`)
	// long runs of base64 or base64url characters (32 or more): encoded
	// SASL responses, opaque tokens, client secrets.
	longRE = regexp.MustCompile(`[A-Za-z0-9+/_~.-]{32,}={0,2}`)
)

// Secrets returns s with every credential-shaped substring replaced by
// Mark. It errs on the side of scrubbing: a long opaque id in server text
// is scrubbed too.
func Secrets(s string) string {
	s = schemeRE.ReplaceAllString(s, "$1 "+Mark)
	s = jwtRE.ReplaceAllString(s, Mark)
	return longRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == Mark {
			return m
		}
		return Mark
	})
}

// URLs is a comma-separated URL list (NATS servers, say) with any user,
// password or token left out, for logs and errors.
func URLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			if at := strings.LastIndex(p, "@"); at >= 0 {
				p = "[redacted]@" + p[at+1:]
			}
			parts[i] = p
			continue
		}
		if u.User != nil {
			u.User = nil
			parts[i] = "[redacted]@" + u.Host
			if u.Scheme != "" {
				parts[i] = u.Scheme + "://" + parts[i]
			}
			continue
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
