package publish

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/natstest"
)

// selfSigned is a certificate for 127.0.0.1 that no CA vouches for.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestInsecureSkipVerifyWarns: nats.tls.insecure_skip_verify lets mailpoller
// talk to a NATS server whose certificate nobody vouches for, and says so,
// once, at start, as an account's tls.insecure_skip_verify does.
func TestInsecureSkipVerifyWarns(t *testing.T) {
	port := natstest.FreePort(t)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		TLS: true, TLSTimeout: 2, TLSConfig: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	url := "tls://127.0.0.1:" + strconv.Itoa(port)
	var logs logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{URL: url, TLS: config.TLS{InsecureSkipVerify: true}}, debugLog(&logs))
	if err != nil {
		t.Fatalf("Connect() with insecure_skip_verify = %v", err)
	}
	c.Close()
	if n := strings.Count(logs.String(), "TLS certificate checks are off for NATS (nats.tls.insecure_skip_verify)"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("not a warning:\n%s", logs.String())
	}

	// Without it, the same server is refused: the option matters.
	var strict logtest.Buffer
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	if c, err := Connect(sctx, config.NATS{URL: url}, debugLog(&strict)); err == nil {
		c.Close()
		t.Fatal("Connect() accepted a certificate nobody vouches for")
	}
	if strings.Contains(strict.String(), "insecure_skip_verify") {
		t.Fatalf("warned without the option:\n%s", strict.String())
	}
}
