package sim

import (
	"context"
	"net"
	"strings"
	"testing"
)

// freeAddr is a loopback address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFixedListenAddresses checks Options.IMAPListen and HTTPListen are
// where the simulator listens, and a busy one fails Start naming it.
func TestFixedListenAddresses(t *testing.T) {
	imapAddr, httpAddr := freeAddr(t), freeAddr(t)
	s, err := Start(context.Background(), &Seed{}, &Options{IMAPListen: imapAddr, HTTPListen: httpAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ep := s.Endpoints()
	if ep.IMAP != imapAddr || ep.Authority != "https://"+httpAddr {
		t.Errorf("endpoints %+v, want IMAP %s and authority https://%s", ep, imapAddr, httpAddr)
	}
	c, err := net.Dial("tcp", imapAddr)
	if err != nil {
		t.Fatalf("IMAP not on %s: %v", imapAddr, err)
	}
	c.Close()
	_, err = Start(context.Background(), &Seed{}, &Options{IMAPListen: imapAddr})
	if err == nil || !strings.Contains(err.Error(), imapAddr) {
		t.Errorf("second Start on busy %s = %v, want an error naming it", imapAddr, err)
	}
}
