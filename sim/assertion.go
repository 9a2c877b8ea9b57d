package sim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// checkAssertion verifies a certificate client assertion as Entra does
// (PROTOCOLS.md §1.5): JWT with alg PS256 (RS256 accepted), x5t#S256 the
// SHA-256 thumbprint of the app's certificate, an RSA-PSS signature by its
// key, aud the token URL, iss = sub = client id, a jti, and a current
// nbf/exp window. It returns 0 or an AADSTS code with Entra-like text.
func checkAssertion(app *App, typ, assertion, tokenURL string) (int, string) {
	if typ != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return 900144, "The request body must contain the following parameter: 'client_assertion_type'."
	}
	if app.Certificate == nil {
		return 700027, "Client assertion failed signature validation: the app has no certificate."
	}
	block, _ := pem.Decode(app.Certificate)
	if block == nil {
		return 700027, "Client assertion failed signature validation."
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return 700027, "Client assertion failed signature validation."
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return 50027, "JWT token is invalid or malformed."
	}
	var header struct {
		Alg     string `json:"alg"`
		X5tS256 string `json:"x5t#S256"`
		X5t     string `json:"x5t"`
		Typ     string `json:"typ"`
	}
	var claims struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Nbf int64  `json:"nbf"`
		Exp int64  `json:"exp"`
	}
	hb, err1 := b64.DecodeString(parts[0])
	cb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return 50027, "JWT token is invalid or malformed."
	}
	sum := sha256.Sum256(cert.Raw)
	if header.X5tS256 != b64.EncodeToString(sum[:]) {
		return 700027, fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s']", header.X5tS256)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return 700027, "Client assertion failed signature validation."
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch header.Alg {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	default:
		err = fmt.Errorf("alg %q", header.Alg)
	}
	if err != nil {
		return 700027, "Client assertion failed signature validation."
	}
	now := time.Now().Unix()
	switch {
	case !strings.EqualFold(strings.TrimSuffix(claims.Aud, "/"), strings.TrimSuffix(tokenURL, "/")):
		return 700212, fmt.Sprintf("No matching federated identity record found for presented assertion audience '%s'.", claims.Aud)
	case claims.Iss != app.ClientID || claims.Sub != app.ClientID:
		return 700023, "Client assertion issuer and subject must be the client id."
	case claims.Jti == "":
		return 700027, "Client assertion has no jti."
	case claims.Exp < now || claims.Nbf > now+300:
		return 500133, "Assertion is not within its valid time range."
	}
	return 0, ""
}
