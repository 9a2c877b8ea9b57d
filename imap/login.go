package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/mailpoller/mailpoller/source"
)

// MailboxPlaceholder in Options.Username stands for the mailbox's address:
// "{mailbox}*master" logs in to each mailbox as Dovecot's master user.
const MailboxPlaceholder = "{mailbox}"

// ErrLoginFailed means the server refused the username and password. It
// wraps source.ErrPermanent: the same password will be refused again.
var ErrLoginFailed error = &fixable{source.Permanent(errors.New("the server refused the username and password")), func(a source.Admin) string {
	return "Check the account's username and password (or password_file). To open another user's mailbox " +
		"the server must let the login act for it: on Dovecot a master user (username \"{mailbox}*master\", or " +
		"AUTHENTICATE PLAIN with the mailbox as authorization identity), on Exchange Server FullAccess for the " +
		"service account (Add-MailboxPermission -Identity " + or(a.Mailbox, "<mailbox>") + " -User <service account> -AccessRights FullAccess)."
}}

// ErrNoStartTLS means the server did not offer STARTTLS on a connection
// that must be upgraded before the password is sent.
var ErrNoStartTLS = source.Permanent(errors.New("the server does not offer STARTTLS: refusing to send the password in plaintext"))

// password reports whether the options log in with a password.
func (o *Options) password() bool { return o.Password != "" }

// login is the username to send for o's mailbox and the authorization
// identity to ask for ("" when the login is the mailbox itself).
func (o *Options) login() (user, authzid string) {
	user = o.Username
	switch {
	case user == "":
		return o.Address, ""
	case strings.Contains(user, MailboxPlaceholder):
		return strings.ReplaceAll(user, MailboxPlaceholder, o.Address), ""
	case strings.EqualFold(user, o.Address):
		return user, ""
	}
	return user, o.Address
}

// passwordLogin authenticates with o's username and password:
// AUTHENTICATE PLAIN when the server offers it (the only way to name a
// mailbox other than the login's own), else AUTHENTICATE LOGIN, else the
// LOGIN command.
func (s *Source) passwordLogin() error {
	user, authzid := s.opts.login()
	caps := s.caps()
	var err error
	switch {
	case caps.Has(goimap.AuthCap(sasl.Plain)):
		err = s.do("authenticate", func() error {
			return s.c.Authenticate(sasl.NewPlainClient(authzid, user, s.opts.Password))
		})
	case authzid != "":
		return source.Permanent(fmt.Errorf("login %s for %s: the server offers no AUTHENTICATE PLAIN, the only way to name another user's mailbox; "+
			"give a username the server maps to the mailbox (e.g. %q with a Dovecot master user)", user, s.opts.Address, MailboxPlaceholder+"*master"))
	case caps.Has(goimap.AuthCap(sasl.Login)):
		err = s.do("authenticate", func() error { return s.c.Authenticate(sasl.NewLoginClient(user, s.opts.Password)) })
	case caps.Has(goimap.CapLoginDisabled):
		return source.Permanent(fmt.Errorf("login %s: the server has disabled password logins (LOGINDISABLED)", user))
	default:
		err = s.do("login", func() error { return s.c.Login(user, s.opts.Password).Wait() })
	}
	if err == nil {
		return nil
	}
	var ie *goimap.Error // scrubbed by do
	if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
		return fmt.Errorf("login %s: %w (server said %q)", user, ErrLoginFailed, ie.Text)
	}
	return fmt.Errorf("login %s: %w", user, err)
}

// maxPlainLine bounds a line read before TLS is up.
const maxPlainLine = 64 << 10

// startTLS upgrades a plaintext connection before anything else is sent on
// it: it reads the greeting, makes sure STARTTLS is offered, asks for it
// and does the TLS handshake. It returns the TLS connection with a
// greeting of its own in front, for go-imap, which must not see the
// plaintext exchange. Bytes the server sends after its OK and before the
// handshake are refused: they would be read as if they had come over TLS.
func startTLS(ctx context.Context, nc net.Conn, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	nc.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReaderSize(nc, 4096)
	greeting, err := plainLine(br)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	switch {
	case strings.HasPrefix(greeting, "* PREAUTH"):
		return nil, source.Permanent(errors.New("the server pre-authenticated the plaintext connection: refusing it"))
	case !strings.HasPrefix(greeting, "* OK"):
		return nil, fmt.Errorf("greeting: server said %q", truncate(greeting))
	}
	caps := greeting
	if !strings.Contains(strings.ToUpper(greeting), "[CAPABILITY ") {
		if caps, err = plainCommand(nc, br, "C1", "CAPABILITY"); err != nil {
			return nil, err
		}
	}
	if !hasWord(caps, "STARTTLS") {
		return nil, ErrNoStartTLS
	}
	if _, err := plainCommand(nc, br, "C2", "STARTTLS"); err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		return nil, errors.New("the server sent data after its STARTTLS reply: refusing the connection")
	}
	t := tls.Client(nc, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake after STARTTLS: %w", err)
	}
	nc.SetDeadline(time.Time{})
	return &greeted{Conn: t, r: io.MultiReader(strings.NewReader("* OK TLS is up\r\n"), t)}, nil
}

// plainCommand sends one command before TLS and returns the untagged
// lines it got, failing unless the tagged reply is OK.
func plainCommand(w io.Writer, br *bufio.Reader, tag, cmd string) (string, error) {
	if _, err := io.WriteString(w, tag+" "+cmd+"\r\n"); err != nil {
		return "", fmt.Errorf("%s: %w", strings.ToLower(cmd), err)
	}
	var untagged strings.Builder
	for {
		line, err := plainLine(br)
		if err != nil {
			return "", fmt.Errorf("%s: %w", strings.ToLower(cmd), err)
		}
		if !strings.HasPrefix(line, tag+" ") {
			untagged.WriteString(line + "\n")
			continue
		}
		if !strings.HasPrefix(strings.ToUpper(line[len(tag)+1:]), "OK") {
			return "", fmt.Errorf("%s: server said %q", strings.ToLower(cmd), truncate(line))
		}
		return untagged.String(), nil
	}
}

// plainLine reads one line of at most maxPlainLine bytes, without CRLF.
func plainLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		line = append(line, b...)
		if len(line) > maxPlainLine {
			return "", &LimitError{What: "line before STARTTLS", Size: int64(len(line)), Limit: maxPlainLine}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return string(bytes.TrimRight(line, "\r\n")), nil
	}
}

// hasWord reports whether the capability text lists word.
func hasWord(caps, word string) bool {
	for _, f := range strings.FieldsFunc(strings.ToUpper(caps), func(r rune) bool { return r == ' ' || r == '[' || r == ']' || r == '\n' }) {
		if f == word {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// greeted is a connection whose first bytes come from r.
type greeted struct {
	net.Conn
	r io.Reader
}

func (g *greeted) Read(p []byte) (int, error) { return g.r.Read(p) }
