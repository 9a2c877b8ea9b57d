package dovecottest

import (
	"crypto/tls"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// login opens a PLAIN session as user over implicit TLS.
func (s *Server) login(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(s.Addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.CAPool}})
	if err != nil {
		t.Fatalf("dial dovecot: %v", err)
	}
	login := func() error { return c.Login(user, Password(user)).Wait() }
	if !c.Caps().Has(goimap.AuthCap(sasl.Plain)) { // Dovecot's LOGIN command needs PLAIN
		login = func() error { return c.Authenticate(sasl.NewLoginClient(user, Password(user))) }
	}
	if err := login(); err != nil {
		c.Close()
		t.Fatalf("login %s: %v\n%s", user, err, s.Log())
	}
	return c
}

// Append delivers raw into user's folder and returns its UID.
func (s *Server) Append(t testing.TB, user, folder string, raw []byte, flags ...goimap.Flag) uint32 {
	t.Helper()
	c := s.login(t, user)
	defer c.Close()
	cmd := c.Append(folder, int64(len(raw)), &goimap.AppendOptions{Flags: flags})
	cmd.Write(raw)
	cmd.Close()
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("append to %s/%s: %v", user, folder, err)
	}
	return uint32(data.UID)
}

// Flags reads every message's flags in user's folder: UID → flags.
func (s *Server) Flags(t testing.TB, user, folder string) map[uint32][]goimap.Flag {
	t.Helper()
	c := s.login(t, user)
	defer c.Close()
	sel, err := c.Select(folder, &goimap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s/%s: %v", user, folder, err)
	}
	out := map[uint32][]goimap.Flag{}
	if sel.NumMessages == 0 {
		return out
	}
	var all goimap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("fetch flags %s/%s: %v", user, folder, err)
	}
	for _, m := range msgs {
		out[uint32(m.UID)] = m.Flags
	}
	return out
}

// UIDValidity returns the folder's UIDVALIDITY.
func (s *Server) UIDValidity(t testing.TB, user, folder string) uint32 {
	t.Helper()
	c := s.login(t, user)
	defer c.Close()
	sel, err := c.Select(folder, &goimap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s/%s: %v", user, folder, err)
	}
	return sel.UIDValidity
}

// Create makes a folder in user's mailbox (a name in the server's own
// hierarchy, e.g. "INBOX.Processed").
func (s *Server) Create(t testing.TB, user, folder string) {
	t.Helper()
	c := s.login(t, user)
	defer c.Close()
	if err := c.Create(folder, nil).Wait(); err != nil {
		t.Fatalf("create %s/%s: %v", user, folder, err)
	}
}
