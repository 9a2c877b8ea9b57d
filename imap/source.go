// Package imap is the IMAP transport: it dials an IMAP server over implicit
// TLS, authenticates with SASL XOAUTH2 and an app-only token, and reads new
// mail of one folder by UID, keeping UIDVALIDITY and the last handled UID as
// the checkpoint. It implements source.Source.
package imap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailpoller/mailpoller/source"
)

// Options say which folder of which mailbox to read and how.
type Options struct {
	Addr      string      // host:port, implicit TLS
	TLSConfig *tls.Config // nil: system roots, server name from Addr
	Mailbox   string      // SMTP address, sent as XOAUTH2 user=
	Folder    string      // default INBOX
	StartFrom string      // unread | all | now (first run only); default unread
	AfterRead string      // mark_read | move | delete | none; default mark_read
	MoveTo    string      // folder for after_read move
	// MaxMessageBytes: larger messages are handed over with their header
	// only and Item.Truncated set. 0 means no limit.
	MaxMessageBytes int64
	// Token returns an app-only access token and its expiry.
	Token func(ctx context.Context) (string, time.Time, error)
	// Logger receives state changes; nil means slog.Default().
	Logger *slog.Logger
	// DebugWriter receives the raw protocol, credentials included. Never
	// set it outside a debugging session.
	DebugWriter io.Writer
}

// renewBefore is how long before the token's expiry the connection is
// replaced, so Exchange never has to end it with "BYE Session invalidated -
// AccessTokenExpired".
const renewBefore = 2 * time.Minute

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
	c           *imapclient.Client
	log         *slog.Logger
	expiry      time.Time
	uidValidity uint32
	uidNext     uint32
	numMessages uint32 // EXISTS at SELECT
	stop        func() bool
	changed     chan struct{} // signalled by unilateral EXISTS
}

type state struct {
	UIDValidity uint32 `json:"uidvalidity"`
	LastUID     uint32 `json:"last_uid"`
}

// Open dials opts.Addr, authenticates opts.Mailbox with XOAUTH2 and selects
// the folder. ctx bounds the whole life of the connection: when it is done
// the connection is closed.
func Open(ctx context.Context, opts Options) (*Source, error) {
	if opts.Folder == "" {
		opts.Folder = "INBOX"
	}
	if opts.StartFrom == "" {
		opts.StartFrom = "unread"
	}
	if opts.AfterRead == "" {
		opts.AfterRead = "mark_read"
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

func (s *Source) connect(ctx context.Context) error {
	tok, exp, err := s.opts.Token(ctx)
	if err != nil {
		return fmt.Errorf("get token: %w", err)
	}
	s.expiry = exp
	tc := s.opts.TLSConfig.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(s.opts.Addr)
		tc.ServerName = host
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, Config: tc}
	conn, err := d.DialContext(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", s.opts.Addr, err)
	}
	s.c = imapclient.New(conn, &imapclient.Options{
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
	if err := s.c.WaitGreeting(); err != nil {
		return fmt.Errorf("greeting from %s: %w", s.opts.Addr, err)
	}
	if err := s.c.Authenticate(NewXOAUTH2Client(s.opts.Mailbox, tok)); err != nil {
		if errors.Is(err, ErrAuthFailed) {
			return fmt.Errorf("authenticate %s: %w", s.opts.Mailbox, err)
		}
		var ie *goimap.Error
		if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
			return fmt.Errorf("authenticate %s: %w (server said %q)", s.opts.Mailbox, ErrAuthFailed, ie.Text)
		}
		return fmt.Errorf("authenticate %s: %w", s.opts.Mailbox, classify(err))
	}
	sel, err := s.c.Select(s.opts.Folder, &goimap.SelectOptions{ReadOnly: s.opts.AfterRead == "none"}).Wait()
	if err != nil {
		err = classify(err)
		var ie *goimap.Error
		if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
			err = source.Permanent(err)
		}
		return fmt.Errorf("select %s: %w", s.opts.Folder, err)
	}
	s.uidValidity, s.uidNext, s.numMessages = sel.UIDValidity, uint32(sel.UIDNext), sel.NumMessages
	if s.opts.AfterRead == "move" {
		if err := s.checkFolder(s.opts.MoveTo); err != nil {
			return err
		}
	}
	s.log.Debug("imap connected", "uidvalidity", s.uidValidity, "uidnext", s.uidNext, "messages", sel.NumMessages)
	return nil
}

func (s *Source) checkFolder(name string) error {
	list, err := s.c.List("", name, nil).Collect()
	if err != nil {
		return fmt.Errorf("list %s: %w", name, classify(err))
	}
	if len(list) == 0 {
		return source.Permanent(fmt.Errorf("move_to folder %q does not exist in %s: create it or fix move_to", name, s.opts.Mailbox))
	}
	return nil
}

// guard closes the connection if ctx ends during a call; the returned func
// disarms it.
func (s *Source) guard(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { s.c.Close() })
}

// Poll implements source.Source.
func (s *Source) Poll(ctx context.Context, raw []byte, handle func(context.Context, source.Batch) error) error {
	defer s.guard(ctx)()
	if !s.expiry.IsZero() && time.Until(s.expiry) < renewBefore {
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
	startFrom := s.opts.StartFrom
	if st != nil && st.UIDValidity != s.uidValidity {
		// Every UID is new: replay the whole folder. start_from does not
		// apply (now or unread could skip mail that arrived after the last
		// checkpoint); the replayed events carry new ids, and consumers
		// recognise repeats by data.message_id.
		s.log.Warn("UIDVALIDITY changed, replaying the folder", "old", st.UIDValidity, "new", s.uidValidity)
		st, startFrom = nil, "all"
	}
	if err := s.c.Noop().Wait(); err != nil {
		return fmt.Errorf("noop: %w", classify(err))
	}
	var crit goimap.SearchCriteria
	var floor uint32 // UIDs at or below floor are done
	first := st == nil
	switch {
	case !first:
		floor = st.LastUID
		var set goimap.UIDSet
		set.AddRange(goimap.UID(floor+1), 0)
		crit.UID = []goimap.UIDSet{set}
	case startFrom == "now":
		return handle(ctx, source.Batch{State: s.encode(s.uidNext - 1)})
	case startFrom == "unread":
		crit.NotFlag = []goimap.Flag{goimap.FlagSeen}
	}
	data, err := s.c.UIDSearch(&crit, nil).Wait()
	if err != nil {
		return fmt.Errorf("uid search in %s: %w", s.opts.Folder, classify(err))
	}
	var uids []uint32
	for _, u := range data.AllUIDs() {
		if uint32(u) > floor { // "n:*" always matches the highest UID
			uids = append(uids, uint32(u))
		}
	}
	slices.Sort(uids)
	if err := s.fetchAll(ctx, uids, handle); err != nil {
		return err
	}
	if first {
		// Everything below UIDNEXT at SELECT time was either unread (and is
		// now handled) or is to be skipped: start after it.
		last := s.uidNext - 1
		if n := len(uids); n > 0 && uids[n-1] > last {
			last = uids[n-1]
		}
		return handle(ctx, source.Batch{State: s.encode(last)})
	}
	return nil
}

func (s *Source) encode(lastUID uint32) []byte {
	b, _ := json.Marshal(state{UIDValidity: s.uidValidity, LastUID: lastUID})
	return b
}

type meta struct {
	uid      uint32
	size     int64
	received time.Time
}

// fetchAll reads sizes first, then bodies in batches bounded by count and
// bytes, and hands each batch over in order. The next batch's bodies are
// fetched while the current batch is being handled (published, flagged,
// checkpointed), so the connection and the publisher both stay busy; at
// most two batches are in memory.
func (s *Source) fetchAll(ctx context.Context, uids []uint32, handle func(context.Context, source.Batch) error) error {
	var batches [][]meta
	for start := 0; start < len(uids); start += 500 {
		metas, err := s.sizes(uids[start:min(start+500, len(uids))])
		if err != nil {
			return err
		}
		var batch []meta
		var bytes int64
		for _, m := range metas {
			// The first batch is small so that handling starts early; the
			// others are fetched while the one before is handled.
			maxN, maxBytes := batchMessages, int64(batchBytes)
			if len(batches) == 0 {
				maxN, maxBytes = maxN/8, maxBytes/8
			}
			if len(batch) > 0 && (len(batch) >= maxN || bytes+m.size > maxBytes) {
				batches = append(batches, batch)
				batch, bytes = nil, 0
			}
			batch = append(batch, m)
			bytes += min(m.size, s.limit())
		}
		if len(batch) > 0 {
			batches = append(batches, batch)
		}
	}
	type fetched struct {
		items []source.Item
		err   error
	}
	prefetch := func(batch []meta) <-chan fetched {
		ch := make(chan fetched, 1) // the goroutine never blocks, even if nobody reads
		go func() {
			items, err := s.bodies(batch)
			ch <- fetched{items, err}
		}()
		return ch
	}
	if len(batches) == 0 {
		return nil
	}
	next := prefetch(batches[0])
	for i, batch := range batches {
		f := <-next
		if f.err != nil {
			return f.err
		}
		if i+1 < len(batches) {
			next = prefetch(batches[i+1])
		}
		if err := handle(ctx, source.Batch{Items: f.items, State: s.encode(batch[len(batch)-1].uid)}); err != nil {
			if i+1 < len(batches) {
				<-next // the connection goes back to the caller idle
			}
			return err
		}
	}
	return nil
}

func (s *Source) limit() int64 {
	if s.opts.MaxMessageBytes <= 0 {
		return 1 << 62
	}
	return s.opts.MaxMessageBytes
}

func uidSet(uids []uint32) goimap.UIDSet {
	var set goimap.UIDSet
	for _, u := range uids {
		set.AddNum(goimap.UID(u))
	}
	return set
}

// sizes fetches UID, RFC822.SIZE and INTERNALDATE for uids, in UID order.
// UIDs the server does not return are kept with size -1.
func (s *Source) sizes(uids []uint32) ([]meta, error) {
	msgs, err := s.c.Fetch(uidSet(uids), &goimap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil {
		return nil, fmt.Errorf("uid fetch sizes: %w", classify(err))
	}
	got := make(map[uint32]*imapclient.FetchMessageBuffer, len(msgs))
	for _, m := range msgs {
		got[uint32(m.UID)] = m
	}
	out := make([]meta, 0, len(uids))
	for _, u := range uids {
		if m, ok := got[u]; ok {
			out = append(out, meta{uid: u, size: m.RFC822Size, received: m.InternalDate})
		} else {
			out = append(out, meta{uid: u, size: -1})
		}
	}
	return out, nil
}

var (
	fullSection   = &goimap.FetchItemBodySection{Peek: true}
	headerSection = &goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, Peek: true}
)

// bodies fetches the messages of one batch: whole ones with BODY.PEEK[],
// too-large ones with BODY.PEEK[HEADER].
func (s *Source) bodies(batch []meta) ([]source.Item, error) {
	var whole, heads []uint32
	for _, m := range batch {
		switch {
		case m.size < 0:
		case m.size > s.limit():
			heads = append(heads, m.uid)
		default:
			whole = append(whole, m.uid)
		}
	}
	got := make(map[uint32][]byte, len(batch))
	refused := map[uint32]error{}
	for _, part := range []struct {
		uids    []uint32
		section *goimap.FetchItemBodySection
	}{{whole, fullSection}, {heads, headerSection}} {
		if len(part.uids) == 0 {
			continue
		}
		err := s.fetchInto(got, part.uids, part.section)
		var ie *goimap.Error
		if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
			// The server refuses a message of the batch: fetch one by one so
			// the others go on and the refused one is dead-lettered.
			for _, u := range part.uids {
				if err := s.fetchInto(got, []uint32{u}, part.section); err != nil {
					if !errors.As(err, &ie) || ie.Type != goimap.StatusResponseTypeNo {
						return nil, fmt.Errorf("uid fetch %d: %w", u, classify(err))
					}
					refused[u] = fmt.Errorf("server refused UID FETCH %d: %s", u, ie.Text)
				}
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("uid fetch bodies: %w", classify(err))
		}
	}
	items := make([]source.Item, 0, len(batch))
	for _, m := range batch {
		it := source.Item{
			ServerID: strconv.FormatUint(uint64(s.uidValidity), 10) + ":" + strconv.FormatUint(uint64(m.uid), 10),
			UID:      m.uid,
			Size:     m.size,
			Received: m.received,
		}
		switch b, ok := got[m.uid]; {
		case ok:
			it.Raw = b
			it.Truncated = m.size > s.limit()
		case refused[m.uid] != nil:
			it.Err = refused[m.uid]
		default:
			it.Err = errVanished
		}
		items = append(items, it)
	}
	return items, nil
}

func (s *Source) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// maxIdle is how long one IDLE may last: Exchange Online drops idle
// connections after about 30 minutes (RFC 2177 says re-issue before 29).
const maxIdle = 20 * time.Minute

// Wait implements source.Waiter with IMAP IDLE: it returns when the server
// reports new messages (EXISTS), after max, or before the token expires.
// Servers without IDLE just wait max.
func (s *Source) Wait(ctx context.Context, max time.Duration) error {
	max = min(max, maxIdle)
	if !s.expiry.IsZero() {
		max = min(max, time.Until(s.expiry)-renewBefore)
	}
	if max <= 0 {
		return nil
	}
	select { // a change seen during the last poll
	case <-s.changed:
		return nil
	default:
	}
	if !s.c.Caps().Has(goimap.CapIdle) {
		sleepCtx(ctx, max)
		return nil
	}
	defer s.guard(ctx)()
	idle, err := s.c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", classify(err))
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-s.changed:
	case <-t.C:
	case <-ctx.Done():
	case <-s.c.Closed():
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("idle done: %w", classify(err))
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("idle: %w", classify(err))
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fetchInto fetches a section of uids into got.
func (s *Source) fetchInto(got map[uint32][]byte, uids []uint32, section *goimap.FetchItemBodySection) error {
	cmd := s.c.Fetch(uidSet(uids), &goimap.FetchOptions{UID: true, BodySection: []*goimap.FetchItemBodySection{section}})
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		var uid uint32
		var body []byte
		for item := m.Next(); item != nil; item = m.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = uint32(item.UID)
			case imapclient.FetchItemDataBodySection:
				if item.Literal == nil {
					continue
				}
				// The literal's size is known: read it into one buffer
				// of that size, not a growing one.
				buf := make([]byte, item.Literal.Size())
				n, err := io.ReadFull(item.Literal, buf)
				if err != nil {
					if cerr := cmd.Close(); cerr != nil {
						return cerr
					}
					return fmt.Errorf("read literal: %w", err)
				}
				body = buf[:n]
			}
		}
		if uid != 0 && body != nil {
			got[uid] = body
		}
	}
	return cmd.Close()
}

// AfterRead implements source.Source.
func (s *Source) AfterRead(ctx context.Context, items []source.Item) error {
	if s.opts.AfterRead == "none" || len(items) == 0 {
		return nil
	}
	defer s.guard(ctx)()
	uids := make([]uint32, 0, len(items))
	for _, it := range items {
		uids = append(uids, it.UID)
	}
	set := uidSet(uids)
	var err error
	switch s.opts.AfterRead {
	case "mark_read":
		err = s.store(set, goimap.FlagSeen)
	case "move":
		if s.c.Caps().Has(goimap.CapMove) {
			_, err = s.c.Move(set, s.opts.MoveTo).Wait()
		} else if _, err = s.c.Copy(set, s.opts.MoveTo).Wait(); err == nil {
			err = s.remove(set)
		}
	case "delete":
		err = s.remove(set)
	default:
		return fmt.Errorf("unknown after_read %q", s.opts.AfterRead)
	}
	if err != nil {
		return fmt.Errorf("after_read %s: %w", s.opts.AfterRead, classify(err))
	}
	return nil
}

func (s *Source) store(set goimap.UIDSet, flag goimap.Flag) error {
	return s.c.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{flag}}, nil).Close()
}

func (s *Source) remove(set goimap.UIDSet) error {
	if err := s.store(set, goimap.FlagDeleted); err != nil {
		return err
	}
	if s.c.Caps().Has(goimap.CapUIDPlus) {
		return s.c.UIDExpunge(set).Close()
	}
	return s.c.Expunge().Close()
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
