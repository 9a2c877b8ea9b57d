// Package imap is the IMAP transport: it dials an IMAP server over implicit
// TLS, authenticates with SASL XOAUTH2 and an app-only token, and reads new
// mail of one folder by UID, keeping UIDVALIDITY and the last handled UID as
// the checkpoint. It implements source.Source.
//
// The server is not trusted: every read has a deadline (ReadTimeout for
// silence, CommandTimeout for a whole command, a longer one while IDLE),
// lines and literals are bounded (MaxLineBytes, MaxMessageBytes), numbers
// from the server are range-checked before any arithmetic, and server text
// is scrubbed of credentials before it goes into an error.
package imap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailpoller/mailpoller/source"
)

// Options say which folder of which mailbox to read and how.
type Options struct {
	// Mailbox is the folder to read and how; its Address is sent as
	// XOAUTH2 user=. Its MaxMessageBytes: larger messages are handed over
	// with their header only and Item.Truncated set, whether the server
	// says so in RFC822.SIZE or only sends more bytes than that; nothing
	// larger is ever held in memory. 0 (or more than 256 MiB) means 256 MiB.
	source.Mailbox
	Addr      string      // host:port, implicit TLS
	TLSConfig *tls.Config // nil: system roots, server name from Addr
	// poison is the Transport's memory of unfetchable messages; nil: none.
	poison *poison
	// ReadTimeout is how long a command waits for the server's next bytes
	// before the connection is closed with a TimeoutError; it also bounds
	// dialing and the TLS handshake. 0 means 60 s.
	ReadTimeout time.Duration
	// CommandTimeout bounds one command from its start to its reply, so a
	// server that trickles bytes fails too; fetching a batch of bodies is
	// one command. IDLE is bounded by its own length plus ReadTimeout
	// instead. 0 means 5 min.
	CommandTimeout time.Duration
	// MaxLineBytes bounds a response line (outside literals) and every
	// literal other than a message body; a longer one closes the
	// connection with a LimitError. 0 means 16 MiB, enough for the UID
	// SEARCH result of a folder of a million messages.
	MaxLineBytes int64
	// Token returns an app-only access token and its expiry, for XOAUTH2.
	Token func(ctx context.Context) (string, time.Time, error)
	// Password, when set, logs in with a password instead of a token:
	// AUTHENTICATE PLAIN when the server offers it, else AUTHENTICATE
	// LOGIN, else the LOGIN command. Username is
	// the login (Address when empty); when it differs from Address, PLAIN
	// names Address as the authorization identity (a Dovecot master user,
	// say), unless it contains MailboxPlaceholder, which is replaced by
	// Address instead.
	Username, Password string
	// StartTLS connects in plaintext (port 143) and upgrades with STARTTLS
	// before anything else is sent; a server that does not offer it is
	// refused with ErrNoStartTLS.
	StartTLS bool
	// Logger receives state changes; nil means slog.Default().
	Logger *slog.Logger
	// DebugWriter receives the raw protocol, credentials included. Never
	// set it outside a debugging session.
	DebugWriter io.Writer
}

// maxMessage is the allowance of a message when MaxMessageBytes is 0 or
// larger: Exchange Online refuses messages over 150 MB.
const maxMessage = 256 << 20

// renewBefore is how long before the token's expiry the connection is
// replaced, so Exchange never has to end it with "BYE Session invalidated -
// AccessTokenExpired".
const renewBefore = 2 * time.Minute

// renewFloor is the shortest life of a connection before it is replaced
// for its token's sake, whatever the token's lifetime: a token that
// expires within renewBefore must not make every Poll reconnect at once.
const renewFloor = time.Minute

// Batch limits: a batch is fetched in one UID FETCH.
const (
	batchMessages = 50
	batchBytes    = 16 << 20
)

// errVanished marks a UID that the server did not return in a FETCH (the
// message was expunged between SEARCH and FETCH, or the server refused it).
var errVanished = fmt.Errorf("server returned no data for this message: %w", source.ErrVanished)

// Source reads one IMAP folder. It is not safe for concurrent use.
type Source struct {
	opts        Options
	conn        *conn
	c           *imapclient.Client
	log         *slog.Logger
	renewAt     time.Time // when Poll asks for a new connection; zero: never
	polls       int       // Polls on this connection
	uidValidity uint32
	uidNext     uint32 // 0: unknown
	uidNextSaid bool   // uidNext is the server's own (SELECT or STATUS), not a guess
	numMessages uint32 // EXISTS at SELECT
	stop        func() bool
	changed     chan struct{} // signalled by unilateral EXISTS
	noUIDPlus   sync.Once     // logs that deletes are left to the server
	delim       rune          // the server's hierarchy delimiter; 0: not asked yet
	folder      string        // opts.Folder as the server names it
}

type state struct {
	UIDValidity uint32 `json:"uidvalidity"`
	LastUID     uint32 `json:"last_uid"`
}

// Open dials opts.Addr, authenticates opts.Address (XOAUTH2, or a password) and selects
// the folder. ctx bounds the whole life of the connection: when it is done
// the connection is closed.
func Open(ctx context.Context, opts Options) (*Source, error) {
	opts.Mailbox = opts.Mailbox.WithDefaults()
	if err := opts.Mailbox.Validate(); err != nil {
		return nil, err
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = defaultReadTimeout
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = defaultCommandTimeout
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = defaultMaxLine
	}
	if opts.MaxMessageBytes <= 0 || opts.MaxMessageBytes > maxMessage {
		opts.MaxMessageBytes = maxMessage
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{opts: opts, log: log, changed: make(chan struct{}, 1)}
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// renewal is when a connection made at connected with a token expiring at
// expiry is replaced: renewBefore ahead of the expiry, but not sooner than
// renewFloor after connecting.
func renewal(connected, expiry time.Time) time.Time {
	if expiry.IsZero() {
		return time.Time{}
	}
	return later(expiry.Add(-renewBefore), connected.Add(renewFloor))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Source) connect(ctx context.Context) error {
	var tok string
	if !s.opts.password() {
		var exp time.Time
		var err error
		if tok, exp, err = s.opts.Token(ctx); err != nil {
			return fmt.Errorf("get token: %w", err)
		}
		s.renewAt = renewal(time.Now(), exp)
	}
	tc := s.opts.TLSConfig.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(s.opts.Addr)
		tc.ServerName = host
	}
	nc, err := s.dial(ctx, tc)
	if err != nil {
		return err
	}
	s.conn = newConn(nc, s.opts.MaxLineBytes)
	s.c = imapclient.New(s.conn, &imapclient.Options{
		DebugWriter: s.opts.DebugWriter,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					s.signal()
				}
			},
		},
	})
	s.stop = context.AfterFunc(ctx, func() { s.c.Close() })
	if err := s.do("greeting", s.c.WaitGreeting); err != nil {
		return fmt.Errorf("greeting from %s: %w", s.opts.Addr, err)
	}
	if err := s.authenticate(tok); err != nil {
		return err
	}
	if s.folder, err = s.serverName(s.opts.Folder); err != nil {
		return err
	}
	var sel *goimap.SelectData
	err = s.do("select", func() (err error) {
		sel, err = s.c.Select(s.folder, &goimap.SelectOptions{ReadOnly: s.opts.AfterRead == "none"}).Wait()
		return err
	})
	if err != nil {
		var ie *goimap.Error
		if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
			err = source.Permanent(err)
		}
		return fmt.Errorf("select %s: %w", s.opts.Folder, err)
	}
	s.uidValidity, s.uidNext, s.numMessages = sel.UIDValidity, uint32(sel.UIDNext), sel.NumMessages
	s.uidNextSaid = s.uidNext != 0
	if s.uidNext == 0 || s.uidValidity == 0 {
		if err := s.learnUIDs(); err != nil {
			return err
		}
	}
	if s.opts.AfterRead == "move" {
		if err := s.checkFolder(s.opts.MoveTo); err != nil {
			return err
		}
	}
	s.log.Debug("imap connected", "uidvalidity", s.uidValidity, "uidnext", s.uidNext, "messages", sel.NumMessages)
	return nil
}

// dial connects to the server over TLS: implicit, or upgraded with
// STARTTLS.
func (s *Source) dial(ctx context.Context, tc *tls.Config) (net.Conn, error) {
	nd := &net.Dialer{Timeout: s.opts.ReadTimeout, KeepAlive: 30 * time.Second}
	if !s.opts.StartTLS {
		nc, err := (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext(ctx, "tcp", s.opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", s.opts.Addr, err)
		}
		return nc, nil
	}
	nc, err := nd.DialContext(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.opts.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	t, err := startTLS(ctx, nc, tc, s.opts.ReadTimeout)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("starttls %s: %w", s.opts.Addr, scrub(err))
	}
	return t, nil
}

func (s *Source) authenticate(tok string) error {
	if s.opts.password() {
		return s.passwordLogin()
	}
	err := s.do("authenticate", func() error { return s.c.Authenticate(NewXOAUTH2Client(s.opts.Address, tok)) })
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrAuthFailed) {
		return fmt.Errorf("authenticate %s: %w", s.opts.Address, err)
	}
	var ie *goimap.Error // scrubbed by do
	if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
		return fmt.Errorf("authenticate %s: %w (server said %q)", s.opts.Address, ErrAuthFailed, ie.Text)
	}
	return fmt.Errorf("authenticate %s: %w", s.opts.Address, err)
}

// learnUIDs fills in what SELECT left out: UIDVALIDITY and UIDNEXT from
// STATUS, else UIDNEXT as one more than the UID of the last message. An
// unknown UIDNEXT must not become 0 - 1.
func (s *Source) learnUIDs() error {
	var st *goimap.StatusData
	err := s.do("status", func() (err error) {
		st, err = s.c.Status(s.folder, &goimap.StatusOptions{UIDNext: true, UIDValidity: true}).Wait()
		return err
	})
	var ie *goimap.Error
	switch {
	case err == nil:
		if s.uidValidity == 0 {
			s.uidValidity = st.UIDValidity
		}
		if s.uidNext == 0 && st.UIDNext != 0 {
			s.uidNext, s.uidNextSaid = uint32(st.UIDNext), true
		}
	case !errors.As(err, &ie):
		return fmt.Errorf("status %s: %w", s.opts.Folder, err)
	}
	if s.uidNext == 0 {
		highest := uint32(0)
		if s.numMessages > 0 {
			var msgs []*imapclient.FetchMessageBuffer
			err := s.do("fetch last uid", func() (err error) {
				msgs, err = s.c.Fetch(goimap.SeqSetNum(s.numMessages), &goimap.FetchOptions{UID: true}).Collect()
				return err
			})
			if err != nil && !errors.As(err, &ie) {
				return fmt.Errorf("fetch the last UID of %s: %w", s.opts.Folder, err)
			}
			for _, m := range msgs {
				highest = max(highest, uint32(m.UID))
			}
		}
		if highest < math.MaxUint32 {
			s.uidNext = highest + 1
		}
	}
	s.log.Warn("server left UIDNEXT or UIDVALIDITY out of SELECT", "folder", s.opts.Folder,
		"uidnext", s.uidNext, "uidnext_from_server", s.uidNextSaid, "uidvalidity", s.uidValidity)
	return nil
}

// do runs one command under the connection's deadlines. Its error is the
// connection's failure (TimeoutError, LimitError) if it had one, else the
// command's, classified and scrubbed.
func (s *Source) do(name string, f func() error) error {
	end := s.conn.begin(name, s.opts.ReadTimeout, s.opts.CommandTimeout)
	err := f()
	end()
	if err == nil {
		return nil
	}
	if fault := s.conn.failure(); fault != nil {
		return fault
	}
	return classify(err)
}

// caps returns the server's capabilities, asking under a deadline if
// they are not known yet; nil if they could not be had.
func (s *Source) caps() goimap.CapSet {
	end := s.conn.begin("capability", s.opts.ReadTimeout, s.opts.CommandTimeout)
	defer end()
	return s.c.Caps()
}

func (s *Source) checkFolder(name string) error {
	name, err := s.serverName(name)
	if err != nil {
		return err
	}
	var list []*goimap.ListData
	err = s.do("list", func() (err error) {
		list, err = s.c.List("", name, nil).Collect()
		return err
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", name, err)
	}
	if len(list) == 0 {
		return source.Permanent(fmt.Errorf("move_to folder %q does not exist in %s: create it or fix move_to", name, s.opts.Address))
	}
	return nil
}

// guard closes the connection if ctx ends during a call; the returned func
// disarms it.
func (s *Source) guard(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { s.c.Close() })
}

// Poll implements source.Source. The first Poll of a connection always
// reads the folder; later ones return source.ErrReconnect once the token
// is due for renewal.
func (s *Source) Poll(ctx context.Context, raw []byte, handle func(context.Context, source.Batch) error) error {
	defer s.guard(ctx)()
	s.polls++
	if s.polls > 1 && !s.renewAt.IsZero() && !time.Now().Before(s.renewAt) {
		return source.ErrReconnect
	}
	var st *state
	if raw != nil {
		st = new(state)
		if err := json.Unmarshal(raw, st); err != nil {
			s.log.Warn("checkpoint unreadable, starting over", "err", err)
			st = nil
		}
	}
	if st != nil && s.uidValidity == 0 {
		// The server never said: assume it has not changed, rather than
		// replaying the folder on every connection.
		s.uidValidity = st.UIDValidity
	}
	startFrom := s.opts.StartFrom
	if st != nil && st.UIDValidity != s.uidValidity {
		// Every UID is new: replay the whole folder. start_from does not
		// apply (now or unread could skip mail that arrived after the last
		// checkpoint); the replayed events carry new ids, and consumers
		// recognise repeats by data.message_id.
		s.log.Warn("UIDVALIDITY changed, replaying the folder", "old", st.UIDValidity, "new", s.uidValidity)
		st, startFrom = nil, "all"
	}
	if st != nil && s.beyond(st.LastUID) {
		// Nothing the server will ever assign is above this checkpoint:
		// waiting for UIDs past it would publish nothing, forever.
		s.log.Warn("checkpoint is at or beyond the folder's UIDNEXT: replaying under start_from", "folder", s.opts.Folder,
			"checkpoint", string(raw), "uidnext", s.uidNext, "start_from", startFrom)
		st = nil
	}
	if err := s.do("noop", func() error { return s.c.Noop().Wait() }); err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	var crit goimap.SearchCriteria
	var floor uint32 // UIDs at or below floor are done
	first := st == nil
	switch {
	case !first:
		floor = st.LastUID // below math.MaxUint32: see beyond
		var set goimap.UIDSet
		set.AddRange(goimap.UID(floor+1), 0)
		crit.UID = []goimap.UIDSet{set}
	case startFrom == "now":
		return handle(ctx, source.Batch{State: s.encode(s.below())})
	case startFrom == "unread":
		crit.NotFlag = []goimap.Flag{goimap.FlagSeen}
	}
	var data *goimap.SearchData
	err := s.do("uid search", func() (err error) {
		data, err = s.c.UIDSearch(&crit, nil).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("uid search in %s: %w", s.opts.Folder, err)
	}
	var uids []uint32
	for _, u := range data.AllUIDs() {
		if uint32(u) > floor { // "n:*" always matches the highest UID
			uids = append(uids, uint32(u))
		}
	}
	slices.Sort(uids)
	if n := len(uids); n > 0 && uids[n-1] >= s.uidNext && uids[n-1] < math.MaxUint32 {
		// UIDNEXT moves on while the connection lives: keep it current, or
		// the checkpoints this connection makes would look beyond it.
		s.uidNext = uids[n-1] + 1
	}
	if err := s.fetchAll(ctx, uids, handle); err != nil {
		return err
	}
	if first {
		// Everything below UIDNEXT at SELECT time was either unread (and is
		// now handled) or is to be skipped: start after it.
		last := s.below()
		if n := len(uids); n > 0 && uids[n-1] > last {
			last = uids[n-1]
		}
		return handle(ctx, source.Batch{State: s.encode(last)})
	}
	return nil
}

// below is the highest UID the folder had at SELECT: UIDNEXT - 1, or 0
// when UIDNEXT is unknown (then all the folder counts as new, and event
// ids absorb the repeats).
func (s *Source) below() uint32 {
	if s.uidNext == 0 {
		return 0
	}
	return s.uidNext - 1
}

// beyond reports whether a checkpoint's last UID leaves nothing for new
// mail: the largest UID there is (last+1 would wrap to "*"), or at or past
// the UIDNEXT the server reported.
func (s *Source) beyond(last uint32) bool {
	return last == math.MaxUint32 || s.uidNextSaid && last >= s.uidNext
}

func (s *Source) encode(lastUID uint32) []byte {
	b, _ := json.Marshal(state{UIDValidity: s.uidValidity, LastUID: lastUID})
	return b
}

// Close implements source.Source.
func (s *Source) Close() error {
	if s.stop != nil {
		s.stop()
	}
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}
