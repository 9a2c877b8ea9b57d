package sim

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestIMAPRefusesGraphToken authenticates on the wire with a Graph token
// whose roles even name IMAP.AccessAsApp: Exchange answers "NO
// AUTHENTICATE failed.", as for any refused token, and accepts the same
// app's Exchange token on the same connection.
func TestIMAPRefusesGraphToken(t *testing.T) {
	seed := &Seed{
		Tenants: []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []App{{Tenant: tenant, ClientID: app1, Secret: "secret-1", Roles: []string{"IMAP.AccessAsApp"},
			GraphRoles: []string{"Mail.ReadWrite", "IMAP.AccessAsApp"}, Mailboxes: []string{"*"}}},
		Mailboxes: []MailboxSeed{{Address: "support@contoso.test", Generate: 1}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, line := dialIMAP(t, s)
	auth := func(tag, scope string) string {
		_, b := token(t, s, tenant, app1, "secret-1", scope)
		tok, _ := b["access_token"].(string)
		if tok == "" {
			t.Fatalf("no token for %s: %v", scope, b)
		}
		ir := base64.StdEncoding.EncodeToString([]byte("user=support@contoso.test\x01auth=Bearer " + tok + "\x01\x01"))
		conn.Write([]byte(tag + " AUTHENTICATE XOAUTH2 " + ir + "\r\n"))
		for {
			if l := line(); strings.HasPrefix(l, tag+" ") {
				return l
			}
		}
	}
	if got := auth("A1", graphScope); got != "A1 NO AUTHENTICATE failed." {
		t.Fatalf("Graph token: %q, want %q", got, "A1 NO AUTHENTICATE failed.")
	}
	if got := auth("A2", scope); !strings.HasPrefix(got, "A2 OK") {
		t.Fatalf("Exchange token: %q, want OK", got)
	}
	if n := s.IMAP().Sessions("support@contoso.test"); n != 1 {
		t.Fatalf("authenticated sessions on support@: %d, want 1", n)
	}
}

// dialIMAP connects to s's IMAP server, reads the greeting, and returns
// the connection and a reader of its next line; the connection closes
// with the test.
func dialIMAP(t *testing.T, s *Sim) (*tls.Conn, func() string) {
	t.Helper()
	conn, err := tls.Dial("tcp", s.Endpoints().IMAP, &tls.Config{RootCAs: s.CAPool()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	if g := line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return conn, line
}

// TestIMAPPassword logs seeded users in with LOGIN and AUTHENTICATE PLAIN:
// the own mailbox, another one through PLAIN's authorization identity when
// the user has FullAccess on it, and refusals for a wrong password or a
// mailbox without FullAccess.
func TestIMAPPassword(t *testing.T) {
	seed := &Seed{
		Tenants:   []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Users:     []User{{Login: "svc@contoso.test", Domain: "CONTOSO", Password: "pw-1", Mailboxes: []string{"support@contoso.test"}}},
		Mailboxes: []MailboxSeed{{Address: "svc@contoso.test"}, {Address: "support@contoso.test", Generate: 2}, {Address: "billing@contoso.test"}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := func(command string) string {
		conn, line := dialIMAP(t, s)
		conn.Write([]byte("A1 " + command + "\r\n"))
		for {
			if l := line(); strings.HasPrefix(l, "A1 ") {
				return l
			}
		}
	}
	plain := func(authz, user, pass string) string {
		return "AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte(authz+"\x00"+user+"\x00"+pass))
	}
	for _, c := range []struct {
		command, box string
		ok           bool
	}{
		{"LOGIN svc@contoso.test pw-1", "svc@contoso.test", true},
		{`LOGIN "CONTOSO\\svc" pw-1`, "svc@contoso.test", true},
		{"LOGIN svc@contoso.test wrong", "", false},
		{plain("", "svc", "pw-1"), "svc@contoso.test", true},
		{plain("support@contoso.test", "svc@contoso.test", "pw-1"), "support@contoso.test", true},
		{plain("billing@contoso.test", "svc@contoso.test", "pw-1"), "", false},
		{plain("support@contoso.test", "svc@contoso.test", "pw-2"), "", false},
	} {
		before := s.IMAP().Sessions(c.box)
		got := cmd(c.command)
		if strings.HasPrefix(got, "A1 OK") != c.ok {
			t.Errorf("%s: %q, want ok=%v", c.command, got, c.ok)
		}
		if c.ok && s.IMAP().Sessions(c.box) != before+1 {
			t.Errorf("%s: no new session on %s", c.command, c.box)
		}
	}
}

// TestIMAPStaleCommands: a command from a session counts as stale once a
// newer session has logged in to the same mailbox, and only then.
func TestIMAPStaleCommands(t *testing.T) {
	seed := &Seed{
		Tenants:   []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps:      []App{{Tenant: tenant, ClientID: app1, Secret: "secret-1", Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"*"}}},
		Mailboxes: []MailboxSeed{{Address: "support@contoso.test", Generate: 1}, {Address: "sales@contoso.test"}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, b := token(t, s, tenant, app1, "secret-1", scope)
	tok, _ := b["access_token"].(string)
	// login opens a session on mailbox; the returned func runs a command
	// and waits for its tagged answer.
	login := func(mailbox string) (cmd func(string) string, conn *tls.Conn) {
		conn, line := dialIMAP(t, s)
		n := 0
		cmd = func(c string) string {
			n++
			tag := "A" + string(rune('0'+n))
			conn.Write([]byte(tag + " " + c + "\r\n"))
			for {
				if l := line(); strings.HasPrefix(l, tag+" ") {
					return l
				}
			}
		}
		ir := base64.StdEncoding.EncodeToString([]byte("user=" + mailbox + "\x01auth=Bearer " + tok + "\x01\x01"))
		if got := cmd("AUTHENTICATE XOAUTH2 " + ir); !strings.HasPrefix(got, "A1 OK") {
			t.Fatalf("login %s: %q", mailbox, got)
		}
		return cmd, conn
	}
	stale := func(want int) {
		t.Helper()
		if got := s.StaleCommands("support@contoso.test"); got != want {
			t.Fatalf("StaleCommands(support@) = %d, want %d", got, want)
		}
	}
	a, aConn := login("support@contoso.test")
	a("SELECT INBOX")
	login("sales@contoso.test") // another mailbox's login changes nothing
	a("SELECT INBOX")
	stale(0)
	bCmd, _ := login("support@contoso.test")
	a("SELECT INBOX") // a works on after b logged in: two clients at once
	stale(1)
	bCmd("SELECT INBOX")
	stale(1)
	// a closes and a new session logs in: b, not a, is now the stale one;
	// a's close, seen late or not, counts nothing.
	aConn.Close()
	c, _ := login("support@contoso.test")
	c("SELECT INBOX")
	stale(1)
	bCmd("SELECT INBOX")
	stale(2)
}
