package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
)

// testCert is a freshly generated self-signed certificate and its key.
type testCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "mailpoller test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert, key}
}

// write stores the certificate and key as PEM files; pkcs1 selects the key
// encoding.
func (tc testCert) write(t *testing.T, pkcs1 bool) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key")
	writePEM(t, certFile, "CERTIFICATE", tc.cert.Raw)
	if pkcs1 {
		writePEM(t, keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(tc.key))
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, keyFile, "PRIVATE KEY", der)
	}
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// verifyAssertion checks a client assertion the way Entra does
// (PROTOCOLS.md §1.5) and returns its jti.
func verifyAssertion(assertion string, cert *x509.Certificate, tokenURL string) (string, error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%d parts, want 3", len(parts))
	}
	enc := base64.RawURLEncoding
	var header map[string]string
	if err := decodeJSON(parts[0], &header); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	sum := sha256.Sum256(cert.Raw)
	if header["alg"] != "PS256" || header["typ"] != "JWT" || header["x5t#S256"] != enc.EncodeToString(sum[:]) {
		return "", fmt.Errorf("header = %v, want alg PS256, typ JWT, x5t#S256 %s", header, enc.EncodeToString(sum[:]))
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("signature encoding: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPSS(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig,
		&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		return "", fmt.Errorf("PSS signature: %w", err)
	}
	var claims struct {
		Aud, Iss, Sub, Jti string
		Nbf, Iat, Exp      int64
	}
	if err := decodeJSON(parts[1], &claims); err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	switch {
	case claims.Aud != tokenURL:
		return "", fmt.Errorf("aud = %q, want %q", claims.Aud, tokenURL)
	case claims.Iss != testClient || claims.Sub != testClient:
		return "", fmt.Errorf("iss, sub = %q, %q; want the client id", claims.Iss, claims.Sub)
	case claims.Exp-claims.Nbf != 600 || claims.Iat != claims.Nbf:
		return "", fmt.Errorf("nbf %d iat %d exp %d; want exp = nbf + 10 min, iat = nbf", claims.Nbf, claims.Iat, claims.Exp)
	case !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(claims.Jti):
		return "", fmt.Errorf("jti = %q, want a random UUID", claims.Jti)
	}
	return claims.Jti, nil
}

func decodeJSON(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func TestCertificateAssertion(t *testing.T) {
	for _, pkcs1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("pkcs1=%v", pkcs1), func(t *testing.T) {
			tc := newTestCert(t)
			certFile, keyFile := tc.write(t, pkcs1)
			e := newEntra(t)
			tokenURL := e.srv.URL + "/" + testTenant + "/oauth2/v2.0/token"
			var mu sync.Mutex
			var jtis []string
			e.check = func(form url.Values) error {
				jti, err := verifyAssertion(form.Get("client_assertion"), tc.cert, tokenURL)
				mu.Lock()
				jtis = append(jtis, jti)
				mu.Unlock()
				return err
			}
			src, err := auth.New(auth.Credentials{Authority: e.srv.URL, AllowHTTP: true, TenantID: testTenant, ClientID: testClient,
				CertFile: certFile, KeyFile: keyFile}, nil)
			if err != nil {
				t.Fatalf("New() = %v", err)
			}
			if exp, ok := src.CertificateExpiry(); !ok || !exp.Equal(tc.cert.NotAfter) {
				t.Errorf("CertificateExpiry() = %v, %v; want %v, true", exp, ok, tc.cert.NotAfter)
			}
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token() = %v", err)
			}
			src.Invalidate(tok)
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatalf("second Token() = %v", err)
			}
			forms := e.requests()
			if len(forms) != 2 || forms[0].Has("client_secret") ||
				forms[0].Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
				t.Fatalf("forms = %v, want two assertion requests without client_secret", forms)
			}
			if len(jtis) != 2 || jtis[0] == jtis[1] {
				t.Errorf("jti values %v, want two different ones", jtis)
			}
		})
	}
}

func TestCertificateInOneFile(t *testing.T) {
	tc := newTestCert(t)
	certFile, keyFile := tc.write(t, false)
	keyPEM, _ := os.ReadFile(keyFile)
	certPEM, _ := os.ReadFile(certFile)
	both := filepath.Join(t.TempDir(), "both.pem")
	os.WriteFile(both, append(keyPEM, certPEM...), 0o600)
	if _, err := auth.New(auth.Credentials{TenantID: testTenant, ClientID: testClient, CertFile: both}, nil); err != nil {
		t.Errorf("New() with key and certificate in one file = %v", err)
	}
}

func TestCertificateLoadErrors(t *testing.T) {
	tc := newTestCert(t)
	certFile, keyFile := tc.write(t, false)
	other := newTestCert(t)
	_, otherKey := other.write(t, true)
	dir := t.TempDir()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecFile := filepath.Join(dir, "ec.key")
	writePEM(t, ecFile, "PRIVATE KEY", ecDER)
	encFile := filepath.Join(dir, "enc.key")
	writePEM(t, encFile, "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3})
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not pem"), 0o600)

	tests := []struct {
		name, cert, key, want string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile, "read cert_file"},
		{"missing key", certFile, filepath.Join(dir, "nope.key"), "read key_file"},
		{"no certificate block", garbage, keyFile, "no PEM CERTIFICATE"},
		{"no key block", certFile, garbage, "no PEM private key"},
		{"mismatched key", certFile, otherKey, "does not belong to the certificate"},
		{"ec key", certFile, ecFile, "RSA"},
		{"encrypted key", certFile, encFile, "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.New(auth.Credentials{TenantID: testTenant, ClientID: testClient, CertFile: tt.cert, KeyFile: tt.key}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, want an error mentioning %q", err, tt.want)
			}
			if auth.IsTransient(err) {
				t.Errorf("IsTransient(%v) = true, want false", err)
			}
		})
	}
}

func TestFederatedTokenFileReadEachRequest(t *testing.T) {
	e := newEntra(t)
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte("eyJfirst.kubernetes.token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := auth.New(auth.Credentials{Authority: e.srv.URL, AllowHTTP: true, TenantID: testTenant, ClientID: testClient,
		FederatedTokenFile: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token() = %v", err)
	}
	if err := os.WriteFile(file, []byte("eyJsecond.kubernetes.token"), 0o600); err != nil {
		t.Fatal(err)
	}
	src.Invalidate(tok)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("second Token() = %v", err)
	}
	var got []string
	for _, f := range e.requests() {
		got = append(got, f.Get("client_assertion"))
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Has("client_secret") {
			t.Errorf("form = %v, want a jwt-bearer assertion", f)
		}
	}
	if want := []string{"eyJfirst.kubernetes.token", "eyJsecond.kubernetes.token"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("server saw assertions %q, want %q", got, want)
	}

	os.WriteFile(file, []byte("  \n"), 0o600)
	src.Invalidate(auth.Token{Value: accessToken(2)})
	_, err = src.Token(context.Background())
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Code != "federated_token_file" || ae.Transient || ae.Fix == "" ||
		!strings.HasPrefix(ae.Error(), "token: federated_token_file: ") {
		t.Errorf("Token() with an empty token file = %v, want a permanent federated_token_file error", err)
	}
	os.Remove(file)
	if _, err := src.Token(context.Background()); !errors.As(err, &ae) || !strings.Contains(ae.Error(), "read federated token file") {
		t.Errorf("Token() with a missing token file = %v", err)
	}
	if n := src.Requests(); n != 2 {
		t.Errorf("Requests() = %d, want 2 (no request without an assertion)", n)
	}
}
