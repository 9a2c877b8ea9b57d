package sim

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

// imapCaps is what Exchange Online advertises before login (PROTOCOLS.md
// §3.1), minus AUTH=PLAIN: basic auth is off in the simulated tenants.
var imapCaps = goimap.CapSet{
	goimap.CapIMAP4rev1: {}, goimap.CapSASLIR: {}, goimap.CapUIDPlus: {}, goimap.CapMove: {},
	goimap.CapID: {}, goimap.CapUnselect: {}, goimap.CapChildren: {}, goimap.CapIdle: {},
	goimap.CapNamespace: {}, goimap.CapLiteralPlus: {},
}

// Exchange's replies, word for word.
const (
	authFailedText   = "AUTHENTICATE failed."
	notConnectedText = "User is authenticated but not connected."
	tokenExpiredBye  = "Session invalidated - AccessTokenExpired"
)

// IMAPServer plays Exchange Online's IMAP service: implicit TLS on
// loopback, SASL XOAUTH2 only, with tokens of Exchange's audience from the
// simulator's token endpoint, over the shared Store. It injects the IMAP
// faults Exchange produces. Its methods are safe for concurrent use.
type IMAPServer struct {
	store  *Store
	dir    *directory
	tokens *TokenServer
	ln     net.Listener
	srv    *imapserver.Server

	mu       sync.Mutex
	accepted int // connections accepted so far
	sessions map[*session]struct{}
	faults   imapFaults
	logins   uint64            // logins so far, numbering each session's
	latest   map[string]uint64 // per mailbox, the number of its newest login
	stale    map[string]int    // per mailbox, commands from older sessions
}

// imapFaults are the faults injected per mailbox (lower-case address).
type imapFaults struct {
	throttle     map[string]int             // commands left to refuse as throttled
	throttleMs   map[string]int             // the back-off those refusals suggest
	notConnected map[string]int             // commands left to refuse as not connected
	dropFetch    map[string]int             // FETCHes left to cut off halfway
	refuse       map[string]map[uint32]bool // UIDs whose FETCH gets NO
}

// startIMAP listens on a loopback port with tc and serves IMAP there.
func startIMAP(store *Store, dir *directory, tokens *TokenServer, tc *tls.Config, addr string) (*IMAPServer, error) {
	s := &IMAPServer{
		store: store, dir: dir, tokens: tokens, sessions: map[*session]struct{}{},
		latest: map[string]uint64{}, stale: map[string]int{},
		faults: imapFaults{throttle: map[string]int{}, throttleMs: map[string]int{}, notConnected: map[string]int{},
			dropFetch: map[string]int{}, refuse: map[string]map[uint32]bool{}},
	}
	ln, err := tls.Listen("tcp", addr, tc)
	if err != nil {
		return nil, fmt.Errorf("imap listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := &session{srv: s, conn: c}
			s.mu.Lock()
			s.sessions[sess] = struct{}{}
			s.accepted++
			s.mu.Unlock()
			return sess, nil, nil
		},
		Caps:   imapCaps,
		Logger: discard{},
	})
	go s.srv.Serve(ln)
	return s, nil
}

// discard drops imapserver's diagnostics (a client hanging up, say).
type discard struct{}

func (discard) Printf(string, ...any) {}

// addr is the host:port the server listens on.
func (s *IMAPServer) addr() string { return s.ln.Addr().String() }

// stop closes the listener and ends every connection.
func (s *IMAPServer) stop() { s.srv.Close() }

// Connections counts the connections accepted so far.
func (s *IMAPServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// open returns the sessions open now.
func (s *IMAPServer) open() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	return all
}

// Sessions counts the authenticated sessions open on mailbox now.
func (s *IMAPServer) Sessions(mailbox string) int {
	n := 0
	for _, v := range s.open() {
		if v.mailbox() == strings.ToLower(mailbox) {
			n++
		}
	}
	return n
}

// StaleCommands counts the commands of mailbox's sessions that came after a
// newer session had logged in to it: two clients working one mailbox at
// once. A client that logs in again after closing its session counts
// nothing, however late the server notices the close.
func (s *IMAPServer) StaleCommands(mailbox string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale[strings.ToLower(mailbox)]
}

// loggedIn numbers a session that has just logged in to mailbox.
func (s *IMAPServer) loggedIn(mailbox string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logins++
	s.latest[mailbox] = s.logins
	return s.logins
}

// Throttle makes the next n commands on mailbox's connections fail with
// Exchange's "BAD Request is throttled. Suggested Backoff Time: <ms>
// milliseconds".
func (s *IMAPServer) Throttle(mailbox string, n int, backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(mailbox)
	s.faults.throttle[m] += n
	s.faults.throttleMs[m] = int(backoff / time.Millisecond)
}

// NotConnected makes the next n commands on mailbox's connections fail
// with "BAD User is authenticated but not connected.".
func (s *IMAPServer) NotConnected(mailbox string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.notConnected[strings.ToLower(mailbox)] += n
}

// DropFetch makes the next n FETCHes on mailbox's connections send half a
// message and drop the connection.
func (s *IMAPServer) DropFetch(mailbox string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropFetch[strings.ToLower(mailbox)] += n
}

// RefuseFetch makes every FETCH that includes uid of mailbox's INBOX fail
// with NO, as a server does for a message it cannot render.
func (s *IMAPServer) RefuseFetch(mailbox string, uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(mailbox)
	if s.faults.refuse[m] == nil {
		s.faults.refuse[m] = map[uint32]bool{}
	}
	s.faults.refuse[m][uid] = true
}

// ExpireSessions ends every session of mailbox with "* BYE Session
// invalidated - AccessTokenExpired", as Exchange does when a token expires.
func (s *IMAPServer) ExpireSessions(mailbox string) {
	for _, v := range s.open() {
		if v.mailbox() == strings.ToLower(mailbox) {
			v.expire()
		}
	}
}

func (s *IMAPServer) refused(mailbox string, uid uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.refuse[mailbox][uid]
}

// commandFault takes the next injected command fault of mailbox, if any,
// and counts the command as stale if a newer session has logged in since.
func (s *IMAPServer) commandFault(mailbox string, login uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if login < s.latest[mailbox] {
		s.stale[mailbox]++
	}
	if s.faults.throttle[mailbox] > 0 {
		s.faults.throttle[mailbox]--
		return &goimap.Error{Type: goimap.StatusResponseTypeBad,
			Text: "Request is throttled. Suggested Backoff Time: " + strconv.Itoa(s.faults.throttleMs[mailbox]) + " milliseconds"}
	}
	if s.faults.notConnected[mailbox] > 0 {
		s.faults.notConnected[mailbox]--
		return &goimap.Error{Type: goimap.StatusResponseTypeBad, Text: notConnectedText}
	}
	return nil
}

func (s *IMAPServer) takeDropFetch(mailbox string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.dropFetch[mailbox] > 0 {
		s.faults.dropFetch[mailbox]--
		return true
	}
	return false
}

// session is one IMAP connection.
type session struct {
	srv  *IMAPServer
	conn *imapserver.Conn

	mu      sync.Mutex
	user    string // mailbox, after AUTHENTICATE
	login   uint64 // the login's number, after AUTHENTICATE
	expiry  *time.Timer
	expired bool // the token expired: the next command gets BYE
	idling  bool // inside IDLE: the server writes nothing else
	selName string
	view    []uint32 // UIDs by sequence number, as this session knows them
}

func (s *session) Close() error {
	s.srv.mu.Lock()
	delete(s.srv.sessions, s)
	s.srv.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	return nil
}

func (s *session) mailbox() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// Login checks a seeded user's password, as Exchange Server's IMAP does
// with Basic authentication enabled; the session opens the user's own
// mailbox.
func (s *session) Login(username, password string) error {
	return s.passwordLogin("", username, password)
}

// passwordLogin opens authzid's mailbox (the user's own when empty) for a
// seeded user whose password matches and who may open it (FullAccess).
func (s *session) passwordLogin(authzid, username, password string) error {
	fail := &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "LOGIN failed."}
	u := s.srv.dir.login(username, password)
	if u == nil {
		return fail
	}
	mailbox := u.Login
	if authzid != "" {
		mailbox = authzid
	}
	if !u.Opens(mailbox) || !s.srv.store.HasMailbox(mailbox) {
		return fail
	}
	s.setUser(mailbox)
	return nil
}

// setUser opens mailbox for this session.
func (s *session) setUser(mailbox string) {
	mailbox = strings.ToLower(mailbox)
	login := s.srv.loggedIn(mailbox)
	s.mu.Lock()
	s.user, s.login = mailbox, login
	s.mu.Unlock()
}

// AuthenticateMechanisms offers PLAIN beside XOAUTH2 when the seed has
// users with passwords.
func (s *session) AuthenticateMechanisms() []string {
	if s.srv.dir.hasPasswords() {
		return []string{"XOAUTH2", "PLAIN"}
	}
	return []string{"XOAUTH2"}
}

func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch {
	case strings.EqualFold(mech, "XOAUTH2"):
		return &xoauth2Server{s: s}, nil
	case strings.EqualFold(mech, "PLAIN") && s.srv.dir.hasPasswords():
		return sasl.NewPlainServer(s.passwordLogin), nil
	}
	return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: authFailedText}
}

// xoauth2Server checks "user=<mailbox>\x01auth=Bearer <token>\x01\x01":
// the token must be the simulator's, for Exchange's audience, of an app
// with IMAP.AccessAsApp and access to the mailbox. Exchange gives one
// answer to every refusal, a token for Graph included.
type xoauth2Server struct{ s *session }

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	fail := &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: authFailedText}
	var user, token string
	for _, f := range strings.Split(string(resp), "\x01") {
		switch {
		case strings.HasPrefix(f, "user="):
			user = strings.TrimPrefix(f, "user=")
		case strings.HasPrefix(strings.ToLower(f), "auth=bearer "):
			token = f[len("auth=Bearer "):]
		}
	}
	if user == "" || token == "" {
		return nil, true, fail
	}
	srv := x.s.srv
	c, err := srv.tokens.Verify(token, exchangeResource)
	if err != nil || !srv.dir.allowed(c, "IMAP.AccessAsApp", user, srv.store) {
		return nil, true, fail
	}
	x.s.setUser(user)
	x.s.mu.Lock()
	x.s.expiry = time.AfterFunc(time.Until(c.Expiry), x.s.expire)
	x.s.mu.Unlock()
	return nil, true, nil
}

// expire ends the session as Exchange does when its token expires: at once
// if it idles, else in reply to its next command. (BYE cannot be written
// through imapserver while IDLE holds the response writer.)
func (s *session) expire() {
	s.mu.Lock()
	s.expired = true
	idling := s.idling
	s.mu.Unlock()
	if idling {
		nc := s.conn.NetConn()
		nc.Write([]byte("* BYE " + tokenExpiredBye + "\r\n"))
		nc.Close()
	}
}

// expiredErr sends BYE if the session's token has expired.
func (s *session) expiredErr() error {
	s.mu.Lock()
	expired := s.expired
	s.mu.Unlock()
	if expired {
		s.conn.Bye(tokenExpiredBye)
		return &goimap.Error{Type: goimap.StatusResponseTypeBye, Text: tokenExpiredBye}
	}
	return nil
}

// fault applies injected faults to a command of this session's mailbox.
func (s *session) fault() error {
	if err := s.expiredErr(); err != nil {
		return err
	}
	return s.srv.commandFault(s.user, s.login)
}
