package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailpoller/mailpoller/source"
)

type meta struct {
	uid      uint32
	size     int64
	received time.Time
}

// Fetch pipeline. While the bodies of one batch stream in, the UID FETCH
// of the next is already on the wire, so a distant server's round trip is
// not paid between batches; sizes are asked sizesChunk UIDs at a time, the
// next chunk's while the bodies of the one before stream.
const (
	// fetchAhead is how many batches' UID FETCH may be in flight at once
	// (sent, not yet read whole): while one batch is handled, fetchAhead-1
	// are read, and the next is sent once handling has returned.
	fetchAhead = 3
	sizesChunk = 500
	// aheadBatchBytes bounds a batch's bytes (batchBytes is the bound of
	// one UID FETCH with a single batch ahead). fetchAhead+1 batches are
	// held at once: one being committed, one handled, the others read; 4
	// of 8 MiB hold less than the 3 of 16 MiB before, and measured faster
	// at a 20 ms round trip (bench/RESULTS.md).
	aheadBatchBytes = 8 << 20
)

// fetchAll reads sizes, then bodies in batches bounded by count and bytes,
// and hands each batch over in order. The next batch's bodies are fetched
// while the current batch is being handled (published, flagged,
// checkpointed), and up to fetchAhead are asked for before the next has
// arrived, so the connection and the publisher both stay busy.
func (s *Source) fetchAll(ctx context.Context, uids []uint32, handle func(context.Context, source.Batch) error) error {
	p := &planner{s: s, uids: uids}
	defer p.wait()
	type inFlight struct {
		batch []meta
		ch    <-chan fetched
	}
	var ahead []inFlight
	defer func() {
		for _, f := range ahead {
			<-f.ch // the connection goes back to the caller idle
		}
	}()
	for {
		for len(ahead) < fetchAhead {
			batch, err := p.next()
			if err != nil {
				return err
			}
			if batch == nil {
				break
			}
			ahead = append(ahead, inFlight{batch, s.prefetch(batch)})
		}
		if len(ahead) == 0 {
			return nil
		}
		cur := ahead[0]
		ahead = ahead[1:]
		f := <-cur.ch
		if f.err != nil {
			return f.err
		}
		if err := handle(ctx, source.Batch{Items: f.items, State: s.encode(cur.batch[len(cur.batch)-1].uid)}); err != nil {
			return err
		}
	}
}

type fetched struct {
	items []source.Item
	err   error
}

// prefetch fetches a batch's bodies in the background.
func (s *Source) prefetch(batch []meta) <-chan fetched {
	ch := make(chan fetched, 1) // the goroutine never blocks, even if nobody reads
	go func() {
		items, err := s.bodies(batch)
		ch <- fetched{items, err}
	}()
	return ch
}

type sized struct {
	metas []meta
	err   error
}

// planner cuts the UIDs into batches, asking for their sizes a chunk at a
// time: the next chunk's are asked as soon as the batches of one are
// planned.
type planner struct {
	s       *Source
	uids    []uint32     // not asked for yet
	ahead   <-chan sized // sizes of the next chunk, in flight
	ready   [][]meta     // planned, not handed out
	planned int          // batches planned so far
}

// next returns the next batch, or nil when there is none left.
func (p *planner) next() ([]meta, error) {
	for len(p.ready) == 0 {
		var r sized
		switch {
		case p.ahead != nil:
			r = <-p.ahead
			p.ahead = nil
		case len(p.uids) > 0:
			r = p.s.sizesOf(p.take())
		default:
			return nil, nil
		}
		if r.err != nil {
			return nil, r.err
		}
		if len(p.uids) > 0 {
			chunk := p.take()
			ch := make(chan sized, 1) // never blocks, even if nobody reads
			go func() { ch <- p.s.sizesOf(chunk) }()
			p.ahead = ch
		}
		p.plan(r.metas)
	}
	b := p.ready[0]
	p.ready = p.ready[1:]
	return b, nil
}

// take removes the next chunk from the UIDs left.
func (p *planner) take() []uint32 {
	chunk := p.uids[:min(sizesChunk, len(p.uids))]
	p.uids = p.uids[len(chunk):]
	return chunk
}

// plan cuts one chunk's messages into batches.
func (p *planner) plan(metas []meta) {
	var batch []meta
	var bytes int64
	for _, m := range metas {
		// The first batch is small so that handling starts early; the
		// others are fetched while the one before is handled.
		maxN, maxBytes := batchMessages, int64(aheadBatchBytes)
		if p.planned == 0 {
			maxN, maxBytes = maxN/8, maxBytes/8
		}
		size := min(max(m.size, 0), p.s.limit()) // RFC822.SIZE is the server's word
		if len(batch) > 0 && (len(batch) >= maxN || bytes+size > maxBytes) {
			p.ready = append(p.ready, batch)
			p.planned++
			batch, bytes = nil, 0
		}
		batch = append(batch, m)
		bytes += size
	}
	if len(batch) > 0 {
		p.ready = append(p.ready, batch)
		p.planned++
	}
}

// wait waits for sizes still in flight, so the connection goes back to the
// caller idle.
func (p *planner) wait() {
	if p.ahead != nil {
		<-p.ahead
		p.ahead = nil
	}
}

func (s *Source) sizesOf(uids []uint32) sized {
	metas, err := s.sizes(uids)
	return sized{metas, err}
}

// limit is a message's allowance: no more of it is held in memory.
func (s *Source) limit() int64 { return s.opts.MaxMessageBytes }

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
	var msgs []*imapclient.FetchMessageBuffer
	err := s.do("uid fetch sizes", func() (err error) {
		msgs, err = s.c.Fetch(uidSet(uids), &goimap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("uid fetch sizes: %w", err)
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
	var whole, heads, alone []uint32
	refused := map[uint32]error{}
	for _, m := range batch {
		bad, suspect := s.opts.poison.state(s, m.uid)
		switch {
		case m.size < 0:
		case bad:
			refused[m.uid] = errImpossible(m.uid)
		case suspect:
			alone = append(alone, m.uid)
		case m.size > s.limit():
			heads = append(heads, m.uid)
		default:
			whole = append(whole, m.uid)
		}
	}
	got := make(map[uint32]body, len(batch))
	for _, u := range alone {
		section := fullSection
		if m := batch[slices.IndexFunc(batch, func(m meta) bool { return m.uid == u })]; m.size > s.limit() {
			section = headerSection
		}
		if err := s.fetchInto(got, []uint32{u}, section); err != nil {
			if isBodyLimit(err) {
				s.opts.poison.failed(s, []uint32{u})
			}
			var ie *goimap.Error
			if !errors.As(err, &ie) || ie.Type != goimap.StatusResponseTypeNo {
				return nil, fmt.Errorf("uid fetch %d: %w", u, err)
			}
			refused[u] = fmt.Errorf("server refused UID FETCH %d: %s", u, ie.Text)
		}
	}
	for _, part := range []struct {
		uids    []uint32
		section *goimap.FetchItemBodySection
	}{{whole, fullSection}, {heads, headerSection}} {
		if len(part.uids) == 0 {
			continue
		}
		err := s.fetchInto(got, part.uids, part.section)
		if isBodyLimit(err) {
			s.opts.poison.failed(s, part.uids)
		}
		var ie *goimap.Error
		if errors.As(err, &ie) && ie.Type == goimap.StatusResponseTypeNo {
			// The server refuses a message of the batch: fetch one by one so
			// the others go on and the refused one is dead-lettered.
			for _, u := range part.uids {
				if err := s.fetchInto(got, []uint32{u}, part.section); err != nil {
					if !errors.As(err, &ie) || ie.Type != goimap.StatusResponseTypeNo {
						return nil, fmt.Errorf("uid fetch %d: %w", u, err)
					}
					refused[u] = fmt.Errorf("server refused UID FETCH %d: %s", u, ie.Text) // scrubbed by do
				}
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("uid fetch bodies: %w", err)
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
			it.Raw = b.raw
			it.Truncated = m.size > s.limit() || b.truncated
			it.Size = max(m.size, b.size)
		case refused[m.uid] != nil:
			it.Err = refused[m.uid]
		default:
			it.Err = errVanished
		}
		items = append(items, it)
	}
	return items, nil
}

// body is what was kept of one body literal.
type body struct {
	raw       []byte
	size      int64 // the literal's size
	truncated bool  // raw holds the header only
}

// fetchInto fetches a section of uids into got.
func (s *Source) fetchInto(got map[uint32]body, uids []uint32, section *goimap.FetchItemBodySection) error {
	return s.do("uid fetch bodies", func() error {
		cmd := s.c.Fetch(uidSet(uids), &goimap.FetchOptions{UID: true, BodySection: []*goimap.FetchItemBodySection{section}})
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			var uid uint32
			var b *body
			for item := m.Next(); item != nil; item = m.Next() {
				switch item := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = uint32(item.UID)
				case imapclient.FetchItemDataBodySection:
					if item.Literal == nil {
						continue
					}
					lb, err := readLiteral(item.Literal, s.limit())
					if err != nil {
						// The literal is half read: the connection is of no
						// further use. Closing it (not cmd.Close, which would
						// drain the literal here while go-imap's reader
						// goroutine goes on reading: a data race) ends both.
						s.c.Close()
						return fmt.Errorf("read literal: %w", err)
					}
					b = &lb
				}
			}
			if uid != 0 && b != nil {
				got[uid] = *b
			}
		}
		return cmd.Close()
	})
}

// headerKeep is the most that is kept of a message over its allowance:
// enough for any header.
const headerKeep = 1 << 20

// readLiteral reads a body literal of which at most allowance bytes may be
// held in memory. The server announces the literal's size and we do not
// trust it (RFC822.SIZE is not even exact with Exchange): a literal over
// the allowance keeps its first bytes, cut at the end of the header, and
// the rest is read and discarded as it arrives.
func readLiteral(lit goimap.LiteralReader, allowance int64) (body, error) {
	size := lit.Size()
	if size <= allowance {
		buf := make([]byte, size)
		if _, err := io.ReadFull(lit, buf); err != nil {
			return body{}, err
		}
		return body{raw: buf, size: size}, nil
	}
	buf := make([]byte, min(allowance, headerKeep))
	n, err := io.ReadFull(lit, buf)
	if err != nil {
		return body{}, err
	}
	if err := discard(lit); err != nil {
		return body{}, err
	}
	head := buf[:n]
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+4]
	} else if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		head = head[:i+2]
	}
	return body{raw: bytes.Clone(head), size: size, truncated: true}, nil
}

// discard reads r to its end through one small buffer (io.Copy to
// io.Discard takes its buffers from a sync.Pool, which may allocate one
// per call).
func discard(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		_, err := r.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
