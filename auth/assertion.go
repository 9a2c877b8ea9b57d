package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// assertionType is the client_assertion_type for certificate and federated
// credentials (PROTOCOLS.md §1.1).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is exp - nbf of a certificate assertion (§1.5: 5–10 min).
const assertionLifetime = 10 * time.Minute

// certificate is a loaded certificate credential.
type certificate struct {
	cert       *x509.Certificate
	key        *rsa.PrivateKey
	thumbprint string // x5t#S256: base64url SHA-256 of the DER
}

// loadCertificate reads a PEM certificate and its RSA private key. keyFile
// may be empty when the key is in certFile.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("auth: read cert_file: %w", err)
	}
	keyPEM := certPEM
	if keyFile != "" && keyFile != certFile {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return nil, fmt.Errorf("auth: read key_file: %w", err)
		}
	}
	var cert *x509.Certificate
	for rest := certPEM; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("auth: cert_file %s holds no PEM CERTIFICATE block", certFile)
		}
		if b.Type == "CERTIFICATE" {
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fmt.Errorf("auth: parse certificate in %s: %w", certFile, err)
			}
		}
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		name := keyFile
		if name == "" {
			name = certFile
		}
		return nil, fmt.Errorf("auth: private key in %s: %w", name, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("auth: the private key does not belong to the certificate in %s (subject %q)", certFile, cert.Subject.String())
	}
	sum := sha256.Sum256(cert.Raw)
	return &certificate{cert: cert, key: key, thumbprint: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// parseRSAKey finds the first private key block in data.
func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("no PEM private key block (want RSA PRIVATE KEY or PRIVATE KEY)")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			if x509.IsEncryptedPEMBlock(b) { //nolint:staticcheck // only to give a clear error
				return nil, errors.New("the key is encrypted; store it unencrypted with restricted file permissions")
			}
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS#1 key: %w", err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("the key is %T; Entra certificate credentials need an RSA key", k)
			}
			return rk, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the key is encrypted; store it unencrypted with restricted file permissions")
		case "EC PRIVATE KEY":
			return nil, errors.New("the key is an EC key; Entra certificate credentials need an RSA key")
		}
	}
}

// assertion returns a signed client assertion (PROTOCOLS.md §1.5): header
// alg PS256, typ JWT, x5t#S256; claims aud = token URL, iss = sub = client
// id, a random jti, nbf = iat = now, exp = now + 10 min.
func (c *certificate) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": c.thumbprint})
	if err != nil {
		return "", err
	}
	jti, err := newUUID()
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"aud": tokenURL,
		"iss": clientID,
		"sub": clientID,
		"jti": jti,
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPSS(rand.Reader, c.key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random jti: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
