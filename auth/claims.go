package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Claims are the fields of an access token that help diagnose setup
// problems (PROTOCOLS.md §1.4). They come from an unverified decode and
// must never be used to make an access decision.
type Claims struct {
	Audience  string    // aud; the first entry when aud is an array
	Tenant    string    // tid
	AppID     string    // appid (v1 tokens) or azp (v2)
	ObjectID  string    // oid: the service principal's object id
	Roles     []string  // roles: application permissions granted; empty usually means no admin consent
	Issuer    string    // iss
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	Expiry    time.Time // exp
	AppIDACR  string    // appidacr (v1) or azpacr (v2): "1" secret, "2" certificate
}

// HasRole reports whether the token grants the application permission role
// (exact, case-sensitive match, as Exchange compares it).
func (c Claims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// rawClaims mirrors the JSON payload.
type rawClaims struct {
	Aud      json.RawMessage `json:"aud"`
	Tid      string          `json:"tid"`
	AppID    string          `json:"appid"`
	Azp      string          `json:"azp"`
	Oid      string          `json:"oid"`
	Roles    []string        `json:"roles"`
	Iss      string          `json:"iss"`
	Iat      *float64        `json:"iat"`
	Nbf      *float64        `json:"nbf"`
	Exp      *float64        `json:"exp"`
	AppIDACR string          `json:"appidacr"`
	AzpACR   string          `json:"azpacr"`
}

// ParseClaims decodes the payload of a JWT access token WITHOUT verifying
// its signature: for diagnostics only ("does the token carry the role
// IMAP.AccessAsApp?"). The error never contains the token.
func ParseClaims(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("auth: parse token claims: not a JWT (%d dot-separated parts, want 3)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, errors.New("auth: parse token claims: payload is not base64url")
	}
	var r rawClaims
	if err := json.Unmarshal(payload, &r); err != nil {
		return Claims{}, errors.New("auth: parse token claims: payload is not a JSON object of claims")
	}
	c := Claims{
		Tenant:   r.Tid,
		AppID:    r.AppID,
		ObjectID: r.Oid,
		Roles:    r.Roles,
		Issuer:   r.Iss,
		AppIDACR: r.AppIDACR,
	}
	if c.AppID == "" {
		c.AppID = r.Azp
	}
	if c.AppIDACR == "" {
		c.AppIDACR = r.AzpACR
	}
	if len(r.Aud) > 0 {
		var one string
		var many []string
		switch {
		case json.Unmarshal(r.Aud, &one) == nil:
			c.Audience = one
		case json.Unmarshal(r.Aud, &many) == nil:
			if len(many) > 0 {
				c.Audience = many[0]
			}
		default:
			return Claims{}, errors.New("auth: parse token claims: aud is neither a string nor an array of strings")
		}
	}
	c.IssuedAt, c.NotBefore, c.Expiry = unixTime(r.Iat), unixTime(r.Nbf), unixTime(r.Exp)
	return c, nil
}

func unixTime(v *float64) time.Time {
	if v == nil {
		return time.Time{}
	}
	sec, frac := math.Modf(*v)
	return time.Unix(int64(sec), int64(frac*1e9))
}
