package imap

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/emersion/go-sasl"
)

// XOAUTH2 is the SASL mechanism name Exchange Online and Gmail use for
// OAuth 2.0 bearer tokens over IMAP.
const XOAUTH2 = "XOAUTH2"

// XOAUTH2Response is the client's initial response:
// "user=<mailbox>\x01auth=Bearer <token>\x01\x01" (sent base64-encoded).
func XOAUTH2Response(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

// xoauth2Client is a sasl.Client for XOAUTH2.
type xoauth2Client struct {
	user, token string
}

// NewXOAUTH2Client returns a SASL client that authenticates user with an
// OAuth 2.0 bearer token.
func NewXOAUTH2Client(user, token string) sasl.Client {
	return &xoauth2Client{user: user, token: token}
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return XOAUTH2, XOAUTH2Response(c.user, c.token), nil
}

// Next is only called when the server refuses the token with an error
// challenge (Gmail, Dovecot: base64 JSON such as {"status":"401"}).
// Exchange Online answers "NO AUTHENTICATE failed." instead. The challenge
// is turned into an error and the caller drops the connection: answering
// it with an empty response is not possible through go-imap (it encodes an
// empty response as "=", which servers reject).
func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	var e struct {
		Status  string `json:"status"`
		Schemes string `json:"schemes"`
		Scope   string `json:"scope"`
	}
	if err := json.Unmarshal(challenge, &e); err != nil || e.Status == "" {
		return nil, fmt.Errorf("%w: server sent an XOAUTH2 error challenge", ErrAuthFailed)
	}
	return nil, fmt.Errorf("%w: server refused the token (status %s)", ErrAuthFailed, e.Status)
}

// encodeIR is the base64 form of the initial response (for tests and traces).
func encodeIR(user, token string) string {
	return base64.StdEncoding.EncodeToString(XOAUTH2Response(user, token))
}
