package graph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ValidationLimit is how long Graph waits for the answer to its
// validation request before it refuses to create the subscription.
const ValidationLimit = 10 * time.Second

// NotSetText is what a running mailpoller answers (404) at
// NotificationsPath when its own config has no graph.notifications_url.
const NotSetText = "graph.notifications_url is not set"

// HandshakeError is an answer to the validation request that Graph would
// refuse: a status other than 200, a body other than the token, or a type
// other than text/plain.
type HandshakeError struct {
	Status      int
	ContentType string
	Body        string // the first bytes of the answer
	NotSet      bool   // a mailpoller answered, one whose config lacks graph.notifications_url
}

func (e *HandshakeError) Error() string {
	switch {
	case e.NotSet:
		return "a mailpoller answered, but its own config has no graph.notifications_url"
	case e.Status != http.StatusOK:
		return fmt.Sprintf("the answer is HTTP %d, not 200 with the validation token (Graph follows no redirect)", e.Status)
	case e.Body == "":
		return "the answer is 200 without the validation token in its body"
	default:
		return fmt.Sprintf("the answer is 200 but %s %q, not the validation token as text/plain", e.ContentType, e.Body)
	}
}

// ValidateNotificationURL sends the request Graph sends to a notification
// URL when a subscription is made: a POST with ?validationToken=, which
// must come back as the 200 text/plain body within ValidationLimit. It
// returns how long the answer took. The error is a *HandshakeError for an
// answer Graph would refuse, else the transport's error (DNS, refused,
// TLS, timeout). hc should trust what Graph trusts: public CAs.
func ValidateNotificationURL(ctx context.Context, hc *http.Client, rawURL string) (time.Duration, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("parse notification URL: %w", err)
	}
	b := make([]byte, 16)
	rand.Read(b)
	token := "Validation: mailpoller check " + hex.EncodeToString(b)
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, ValidationLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("validation request: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	// Graph wants the 200 itself: a redirect (to a login page, say) fails.
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start := time.Now()
	resp, err := noRedirect.Do(req)
	if err != nil {
		return 0, fmt.Errorf("validation request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	took := time.Since(start)
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusOK && ct == "text/plain" && string(body) == token {
		return took, nil
	}
	text := strings.TrimSpace(string(body))
	return took, &HandshakeError{Status: resp.StatusCode, ContentType: ct, Body: text[:min(len(text), 200)],
		NotSet: resp.StatusCode == http.StatusNotFound && text == NotSetText}
}
