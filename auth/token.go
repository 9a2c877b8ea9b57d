package auth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Token is an access token and the moment it stops being valid.
//
// Formatting a Token with any fmt verb, through log/slog or as JSON shows
// "[redacted]" instead of Value; only code that reads Value directly sees it.
type Token struct {
	Value  string    // the bearer token
	Expiry time.Time // when the token expires (local clock)
}

// String returns "[redacted]".
func (t Token) String() string { return redacted }

// GoString returns "[redacted]".
func (t Token) GoString() string { return redacted }

// Format implements fmt.Formatter: every verb prints "[redacted]".
func (t Token) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// LogValue implements slog.LogValuer: "[redacted]".
func (t Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON writes the expiry and "[redacted]" for the value.
func (t Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Value  string    `json:"value"`
		Expiry time.Time `json:"expiry"`
	}{redacted, t.Expiry})
}
