package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
)

// newCert writes a self-signed RSA certificate and key as PEM files.
func newCert(t *testing.T) (certPEM []byte, certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "mailpoller"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(20 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	return certPEM, certFile, keyFile
}

// TestCertificateAssertion runs auth's certificate flow against the token
// endpoint, which checks the PS256 signature, x5t#S256, aud, iss/sub and times.
func TestCertificateAssertion(t *testing.T) {
	registered, certFile, keyFile := newCert(t)
	_, otherCert, otherKey := newCert(t)
	seed := &Seed{
		Tenants:   []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps:      []App{{Tenant: tenant, ClientID: app1, Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"*"}, Certificate: registered}},
		Mailboxes: []MailboxSeed{{Address: "support@contoso.test"}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}}
	source := func(cert, key string) *auth.Source {
		src, err := auth.New(auth.Credentials{Authority: s.Endpoints().Authority, TenantID: tenant, ClientID: app1, CertFile: cert, KeyFile: key},
			&auth.Options{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := source(certFile, keyFile)
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token() with the registered certificate = %v", err)
	}
	if c, err := s.Verify(tok.Value); err != nil || c.AppID != app1 {
		t.Fatalf("issued token: %+v, %v", c, err)
	}
	if exp, ok := src.CertificateExpiry(); !ok || time.Until(exp) > 30*24*time.Hour {
		t.Fatalf("CertificateExpiry() = %v, %v", exp, ok)
	}
	_, err = source(otherCert, otherKey).Token(context.Background())
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.AADSTS != 700027 || ae.Transient {
		t.Fatalf("Token() with an unregistered certificate = %v, want permanent AADSTS700027", err)
	}
}
