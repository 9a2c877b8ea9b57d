package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailpoller/mailpoller/internal/dovecottest"
	"github.com/mailpoller/mailpoller/source"
)

// TestDovecotPassword logs in to a real Dovecot with a password: PLAIN over
// implicit TLS and over STARTTLS, LOGIN when PLAIN is not offered, another
// user's mailbox through a master user (PLAIN's authorization identity,
// and "{mailbox}*master"), and a wrong password ending as ErrLoginFailed.
func TestDovecotPassword(t *testing.T) {
	const alice, bob = "alice@example.test", "bob@example.test"
	start := func(mechs string) *dovecottest.Server {
		srv := dovecottest.Start(t, dovecottest.Options{Users: []string{alice, bob}, MasterUser: "poller", Mechanisms: mechs,
			Introspect: func(string) (string, bool) { return "", false }})
		srv.Append(t, alice, "INBOX", []byte("Subject: a\r\n\r\nfor alice\r\n"))
		srv.Append(t, bob, "INBOX", []byte("Subject: b1\r\n\r\nfor bob\r\n"))
		srv.Append(t, bob, "INBOX", []byte("Subject: b2\r\n\r\nfor bob\r\n"))
		return srv
	}
	srv := start("")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := func(srv *dovecottest.Server, mailbox, user, pass string, starttls bool) Options {
		addr := srv.Addr
		if starttls {
			addr = srv.PlainAddr
		}
		return Options{Addr: addr, TLSConfig: &tls.Config{RootCAs: srv.CAPool}, Mailbox: source.Mailbox{Address: mailbox},
			Username: user, Password: pass, StartTLS: starttls}
	}
	cases := []struct {
		name                    string
		mailbox, user, password string
		starttls                bool
		want                    uint32
	}{
		{"own login, TLS", alice, "", dovecottest.Password(alice), false, 1},
		{"own login, STARTTLS", bob, bob, dovecottest.Password(bob), true, 2},
		{"master user as authzid", bob, "poller", dovecottest.Password("poller"), false, 2},
		{"master user placeholder, STARTTLS", alice, "{mailbox}*poller", dovecottest.Password("poller"), true, 1},
	}
	for _, c := range cases {
		res, err := Probe(ctx, opts(srv, c.mailbox, c.user, c.password, c.starttls))
		if err != nil {
			t.Fatalf("%s: Probe = %v\n%s", c.name, err, srv.Log())
		}
		if res.Messages != c.want {
			t.Errorf("%s: %d messages, want %d (the wrong mailbox was opened?)", c.name, res.Messages, c.want)
		}
	}
	_, err := Probe(ctx, opts(srv, alice, "", "wrong", false))
	if !errors.Is(err, ErrLoginFailed) || !errors.Is(err, source.ErrPermanent) {
		t.Fatalf("wrong password: %v, want ErrLoginFailed (permanent)", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}

	// A server that offers no AUTHENTICATE PLAIN: AUTHENTICATE LOGIN, which
	// cannot name another mailbox than the login's.
	srv = start("login")
	for _, starttls := range []bool{false, true} {
		res, err := Probe(ctx, opts(srv, bob, "", dovecottest.Password(bob), starttls))
		if err != nil || res.Messages != 2 {
			t.Fatalf("LOGIN (starttls %v): %v, %+v\n%s", starttls, err, res, srv.Log())
		}
	}
	if _, err := Probe(ctx, opts(srv, bob, "poller", dovecottest.Password("poller"), false)); !errors.Is(err, source.ErrPermanent) ||
		!strings.Contains(err.Error(), "AUTHENTICATE PLAIN") {
		t.Fatalf("authzid without PLAIN: %v, want a permanent error naming AUTHENTICATE PLAIN", err)
	}
}

// TestStartTLSNotOffered: a plaintext server that does not offer STARTTLS
// gets no password.
func TestStartTLSNotOffered(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("u@example.test", "secret")
	u.Create("INBOX", nil)
	mem.AddUser(u)
	logins := make(chan string, 1)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &spySession{mem.NewSession(), logins}, nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Probe(ctx, Options{Addr: ln.Addr().String(), Mailbox: source.Mailbox{Address: "u@example.test"},
		Password: "secret", StartTLS: true})
	if !errors.Is(err, ErrNoStartTLS) {
		t.Fatalf("Probe = %v, want ErrNoStartTLS", err)
	}
	select {
	case user := <-logins:
		t.Fatalf("the password was sent in plaintext (login %s)", user)
	default:
	}
}

// spySession reports logins.
type spySession struct {
	imapserver.Session
	logins chan<- string
}

func (s *spySession) Login(user, pass string) error {
	s.logins <- user
	return s.Session.Login(user, pass)
}
