package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Error is a refusal from the token endpoint (or a response that is not a
// token), with Entra's fields and a fix in plain words for an admin. It
// never holds a secret, token or client assertion.
type Error struct {
	HTTPStatus    int    // HTTP status of the response (200 for a 200 without a token)
	Code          string // OAuth "error" field, e.g. "invalid_client"
	AADSTS        int    // first entry of error_codes, e.g. 7000215; 0 if none
	Description   string // first line of error_description without the "AADSTSnnn: " prefix and trace ids
	TraceID       string // trace_id, for a support case with Microsoft
	CorrelationID string // correlation_id
	Transient     bool   // retrying later with backoff may succeed
	Fix           string // what an admin should do, in plain words
	// RetryAfter is the server's Retry-After hint (0 if none).
	RetryAfter time.Duration
}

// Error returns e.g. "token: AADSTS7000215 invalid_client: Invalid client
// secret provided...: fix: the client secret is wrong: ... (trace_id=...,
// correlation_id=...)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("token: ")
	if e.AADSTS != 0 {
		fmt.Fprintf(&b, "AADSTS%d ", e.AADSTS)
	} else if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d ", e.HTTPStatus)
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString("error")
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Fix != "" {
		b.WriteString(": fix: ")
		b.WriteString(e.Fix)
	}
	if e.TraceID != "" || e.CorrelationID != "" {
		fmt.Fprintf(&b, " (trace_id=%s, correlation_id=%s)", e.TraceID, e.CorrelationID)
	}
	return b.String()
}

// IsTransient reports whether err may go away by retrying later with
// backoff: network failures, timeouts, HTTP 5xx and 429, error
// temporarily_unavailable and the AADSTS codes for throttling and server
// trouble. Configuration errors (bad credentials, tenant, scope, files) and
// cancellation report false.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Transient
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var (
		pathErr     *fs.PathError
		certErr     *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidCert x509.CertificateInvalidError
	)
	if errors.As(err, &pathErr) || errors.As(err, &certErr) || errors.As(err, &unknownCA) ||
		errors.As(err, &hostnameErr) || errors.As(err, &invalidCert) {
		return false // files and TLS trust are configuration
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var (
		urlErr *url.Error
		opErr  *net.OpError
		dnsErr *net.DNSError
		netErr net.Error
	)
	return errors.As(err, &urlErr) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.As(err, &netErr) && netErr.Timeout()
}

// newError classifies an Entra error response: its OAuth error code and
// description, and the fields only Entra sends.
func newError(status int, code, description string, r errorResponse, retryAfter string) *Error {
	e := &Error{
		HTTPStatus:    status,
		Code:          code,
		TraceID:       r.TraceID,
		CorrelationID: r.CorrelationID,
		RetryAfter:    parseRetryAfter(retryAfter),
	}
	e.Description, e.AADSTS = firstLine(description)
	if len(r.ErrorCodes) > 0 && r.ErrorCodes[0] > 0 {
		e.AADSTS = r.ErrorCodes[0]
	}
	e.Transient, e.Fix = classify(status, e.Code, e.AADSTS)
	return e
}

// firstLine returns the first line of an error_description with its
// "AADSTSnnn: " prefix removed, and the code from that prefix.
func firstLine(desc string) (string, int) {
	line, _, _ := strings.Cut(desc, "\n")
	line = strings.TrimSpace(line)
	code := 0
	if rest, ok := strings.CutPrefix(line, "AADSTS"); ok {
		num, text, found := strings.Cut(rest, ":")
		if n, err := strconv.Atoi(num); err == nil && found {
			code = n
			line = strings.TrimSpace(text)
		}
	}
	// Some descriptions put the trace id on the same line.
	if i := strings.Index(line, " Trace ID:"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	return line, code
}

func parseRetryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}
