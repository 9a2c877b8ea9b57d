// Package hostile is an IMAP server for tests that misbehaves on purpose.
// It is a real server, go-imap v2's imapserver with the in-memory
// imapmemserver backend, behind a TLS-terminating proxy on 127.0.0.1 that
// rewrites, stalls, trickles or answers in the server's place, as told by
// Faults. Without faults it is an honest IMAP4rev1 server with UIDPLUS,
// MOVE and IDLE that accepts XOAUTH2 with any token for its one mailbox.
//
// Typical use:
//
//	srv := hostile.Start(t, hostile.Options{})
//	srv.Deliver(t, "INBOX", raw)
//	srv.Misbehave(hostile.Faults{DropUIDNext: true})
//	// point the client at srv.Addr with srv.TLSConfig()
package hostile

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/mailpoller/mailpoller/internal/testcert"
)

// Options configure a Server.
type Options struct {
	// Mailbox is the one user the server knows, as sent in XOAUTH2
	// user=; "" means "user@example.test".
	Mailbox string
	// Folders are created besides INBOX.
	Folders []string
}

// Server is a running hostile IMAP server. Its methods are safe for
// concurrent use.
type Server struct {
	// Addr is the host:port of the TLS listener (127.0.0.1).
	Addr string
	// CAPool trusts the server's certificate.
	CAPool *x509.CertPool
	// CAPEM is the same certificate in PEM, for a config's tls.ca_file.
	CAPEM []byte
	// Mailbox is the user the server accepts.
	Mailbox string

	user    *imapmemserver.User
	srv     *imapserver.Server
	backend net.Listener // the honest server, plain TCP
	ln      net.Listener // the proxy, TLS

	mu      sync.Mutex
	faults  Faults
	release chan struct{} // closed by Release
	logins  int
	conns   map[*proxyConn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Mailbox == "" {
		opts.Mailbox = "user@example.test"
	}
	s := &Server{Mailbox: opts.Mailbox, release: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	s.user = imapmemserver.NewUser(opts.Mailbox, "")
	for _, f := range append([]string{"INBOX"}, opts.Folders...) {
		if err := s.user.Create(f, nil); err != nil {
			t.Fatalf("hostile: create %s: %v", f, err)
		}
	}
	tc, err := testcert.New("hostile imap")
	if err != nil {
		t.Fatalf("hostile: certificate: %v", err)
	}
	cert := tc.TLS
	s.CAPool, s.CAPEM = tc.Pool, tc.CertPEM
	if s.backend, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatalf("hostile: listen: %v", err)
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{s: s}, nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}, goimap.CapUIDPlus: {}, goimap.CapMove: {}, goimap.CapNamespace: {}},
		InsecureAuth: true, // behind the TLS proxy, on loopback
		Logger:       quiet{},
	})
	go s.srv.Serve(s.backend)
	if s.ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatalf("hostile: listen: %v", err)
	}
	s.Addr = s.ln.Addr().String()
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// TLSConfig returns a client configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CAPool, MinVersion: tls.VersionTLS12}
}

// Close stops the server and ends its connections, held ones included.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*proxyConn, 0, len(s.conns))
	for pc := range s.conns {
		conns = append(conns, pc)
	}
	s.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
	s.ln.Close()
	s.srv.Close()
	s.wg.Wait()
}

// Misbehave replaces the server's faults; the zero Faults make it honest
// again. Faults apply from the next line the proxy handles, on open
// connections too.
func (s *Server) Misbehave(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Release ends every stall: held replies flow again, and StallGreeting
// and StallFetch are cleared so new connections are honest about them.
func (s *Server) Release() {
	s.mu.Lock()
	s.faults.StallGreeting, s.faults.StallFetch = false, false
	close(s.release)
	s.release = make(chan struct{})
	s.mu.Unlock()
}

// Logins is how many AUTHENTICATE and LOGIN commands clients sent,
// answered by the server or by a fault.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Connections is how many client connections are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) current() (Faults, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults, s.release
}

// Deliver appends raw to folder, as new mail arriving, with flags (an
// other client's \Deleted, say), and returns its UID. Open connections
// learn of it as IMAP clients do (EXISTS on their next command or IDLE).
func (s *Server) Deliver(t testing.TB, folder string, raw []byte, flags ...goimap.Flag) uint32 {
	t.Helper()
	data, err := s.user.Append(folder, literal{bytes.NewReader(raw), int64(len(raw))}, &goimap.AppendOptions{Flags: flags, Time: time.Now()})
	if err != nil {
		t.Fatalf("hostile: deliver to %s: %v", folder, err)
	}
	return uint32(data.UID)
}

type literal struct {
	*bytes.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

// Message is a message as the server holds it.
type Message struct {
	UID   uint32
	Flags []goimap.Flag
}

// Has reports whether the message has flag.
func (m Message) Has(flag goimap.Flag) bool {
	for _, f := range m.Flags {
		if strings.EqualFold(string(f), string(flag)) {
			return true
		}
	}
	return false
}

// Messages lists folder as the honest server holds it, whatever the
// faults.
func (s *Server) Messages(t testing.TB, folder string) []Message {
	t.Helper()
	c, err := imapclient.DialInsecure(s.backend.Addr().String(), nil)
	if err != nil {
		t.Fatalf("hostile: dial the backend: %v", err)
	}
	defer c.Close()
	if err := c.Login(s.Mailbox, "").Wait(); err != nil {
		t.Fatalf("hostile: login: %v", err)
	}
	sel, err := c.Select(folder, &goimap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("hostile: examine %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var set goimap.SeqSet
	set.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(set, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("hostile: fetch flags: %v", err)
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, Message{UID: uint32(m.UID), Flags: m.Flags})
	}
	return out
}

// session is a backend session: imapmemserver's, with XOAUTH2 (any
// token) and LOGIN (any password) for the server's mailbox.
type session struct {
	*imapmemserver.UserSession // nil until authenticated
	s                          *Server
}

func (x *session) Login(username, password string) error {
	if !strings.EqualFold(username, x.s.Mailbox) {
		return imapserver.ErrAuthFailed
	}
	x.UserSession = imapmemserver.NewUserSession(x.s.user)
	return nil
}

func (x *session) AuthenticateMechanisms() []string { return []string{"XOAUTH2"} }

func (x *session) Authenticate(mech string) (sasl.Server, error) {
	if !strings.EqualFold(mech, "XOAUTH2") {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "unsupported mechanism"}
	}
	return xoauth2{x}, nil
}

type xoauth2 struct{ x *session }

func (a xoauth2) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, token string
	for _, f := range strings.Split(string(resp), "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			user = v
		} else if len(f) > len("auth=Bearer ") && strings.EqualFold(f[:len("auth=Bearer ")], "auth=Bearer ") {
			token = f[len("auth=Bearer "):]
		}
	}
	if token == "" {
		return nil, true, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}
	}
	return nil, true, a.x.Login(user, "")
}
