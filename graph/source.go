package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

const (
	// pageSize is the delta page size asked for with odata.maxpagesize.
	pageSize = 100
	// batchItems is how many messages one Batch hands over.
	batchItems = 20
	// maxPages bounds the delta pages of one poll (a server that hands
	// out nextLinks for ever); the pages handled are checkpointed.
	maxPages = 4096
	// headerCap is the most of a too-large message kept as its header.
	headerCap = 256 << 10
)

// state is the checkpoint: the link to follow next and whether it is
// still the first round through the folder, where start_from applies.
type state struct {
	Link    string           `json:"link"`
	Initial bool             `json:"initial,omitempty"`
	Mode    source.StartFrom `json:"mode,omitempty"`
}

// Source reads one folder of one mailbox with Graph's delta query. It
// implements source.Source and source.Quarantiner.
type Source struct {
	c      *Client
	mb     source.Mailbox
	folder Folder
	log    *slog.Logger

	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	mu      sync.Mutex
	folders map[string]string // resolved move_to / quarantine ids by path
}

// Open resolves mb's folder (and move_to), which also checks that the
// app may read the mailbox.
func Open(ctx context.Context, c *Client, mb source.Mailbox, log *slog.Logger) (*Source, error) {
	mb = mb.WithDefaults()
	if err := mb.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	f, err := c.Folder(ctx, mb.Address, mb.Folder)
	if err != nil {
		return nil, err
	}
	s := &Source{c: c, mb: mb, folder: f, log: log.With("mailbox", mb.Address), folders: map[string]string{}}
	if mb.AfterRead == source.Move {
		if _, err := s.folderID(ctx, mb.MoveTo, false); err != nil {
			return nil, fmt.Errorf("move_to: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Wait implements source.Waiter. With change notifications (Options.Push)
// it subscribes the folder, or renews its subscription, and returns when
// Graph notifies new mail, max passes, or ctx ends or Close is called;
// without them it waits max. It never fails: a subscription Graph refuses
// is logged, and the poll at max goes on.
func (s *Source) Wait(ctx context.Context, max time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if p := s.c.push; p != nil {
		p.wait(ctx, p.watch(s.c, s.mb.Address, s.folder.ID), max)
		return nil
	}
	sleep(ctx, max)
	return nil
}

// Close implements source.Source: the call in progress ends.
func (s *Source) Close() error {
	s.cancel()
	return nil
}

// bound is ctx that also ends with Close.
func (s *Source) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// folderID is the id of the folder path, looked up once per Source;
// create makes the levels that are missing.
func (s *Source) folderID(ctx context.Context, path string, create bool) (string, error) {
	s.mu.Lock()
	id, ok := s.folders[path]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	find := s.c.Folder
	if create {
		find = s.c.EnsureFolder
	}
	f, err := find(ctx, s.mb.Address, path)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.folders[path] = f.ID
	s.mu.Unlock()
	return f.ID, nil
}

// first is the state of a first round through the folder.
func (s *Source) first(mode source.StartFrom) state {
	return state{Link: s.c.base + userPath(s.mb.Address) + "/mailFolders/" + url.PathEscape(s.folder.ID) +
		"/messages/delta?changeType=created&$select=id,isRead,receivedDateTime", Initial: true, Mode: mode}
}

// deltaItem is one entry of a delta page.
type deltaItem struct {
	ID       string          `json:"id"`
	IsRead   *bool           `json:"isRead"`
	Received time.Time       `json:"receivedDateTime"`
	Removed  json.RawMessage `json:"@removed"`
}

type deltaPage struct {
	Value []deltaItem `json:"value"`
	Next  string      `json:"@odata.nextLink"`
	Delta string      `json:"@odata.deltaLink"`
}

// Poll implements source.Source. It follows the delta links until Graph
// hands over a deltaLink, and hands the new messages of each page over,
// oldest first, in batches; the last batch of a page carries the link to
// the next page (or the deltaLink) as its checkpoint.
//
// First run: start_from decides (all, unread, or now: the whole first
// round is skipped). A delta token Graph no longer knows starts a new
// round under start_from, with now read as unread, so that mail arriving
// while the token was lost is not skipped; the event ids absorb the
// repeats.
func (s *Source) Poll(ctx context.Context, raw []byte, handle func(context.Context, source.Batch) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	st := s.first(s.mb.StartFrom)
	if raw != nil {
		var saved state
		if err := json.Unmarshal(raw, &saved); err != nil || saved.Link == "" {
			s.log.Warn("checkpoint unreadable, reading the folder again under start_from", "checkpoint_bytes", len(raw))
			st = s.first(resyncMode(s.mb.StartFrom))
		} else {
			st = saved
		}
	}
	resynced := false
	for pages := 1; ; pages++ {
		link, err := s.c.link(st.Link)
		if err != nil {
			return source.Permanent(err)
		}
		var page deltaPage
		err = s.c.getJSON(ctx, request{method: "GET", url: link, prefer: []string{fmt.Sprintf("odata.maxpagesize=%d", pageSize)},
			mailbox: s.mb.Address, op: "delta of " + s.mb.Folder}, &page)
		var ge *Error
		if errors.As(err, &ge) && ge.resync() && !resynced {
			s.log.Warn("Graph no longer knows the delta token, reading the folder again; repeats carry the same event id",
				"status", ge.Status, "code", ge.Code)
			st, resynced = s.first(resyncMode(s.mb.StartFrom)), true
			continue
		}
		if err != nil {
			return err
		}
		next := state{Link: page.Next, Initial: st.Initial, Mode: st.Mode}
		if page.Next == "" {
			if page.Delta == "" {
				return fmt.Errorf("graph delta of %s in %s: a page with neither nextLink nor deltaLink", s.mb.Folder, s.mb.Address)
			}
			next = state{Link: page.Delta}
		}
		if err := s.page(ctx, page.Value, st, next, handle); err != nil {
			return err
		}
		if page.Next == "" {
			return nil
		}
		st = next
		if pages >= maxPages {
			return fmt.Errorf("graph delta of %s in %s: %d pages in one poll and still a nextLink; the next poll goes on from the checkpoint",
				s.mb.Folder, s.mb.Address, pages)
		}
	}
}

func resyncMode(m source.StartFrom) source.StartFrom {
	if m == source.StartNow {
		return source.StartUnread
	}
	return m
}

// page hands over the new messages of one delta page.
func (s *Source) page(ctx context.Context, items []deltaItem, st, next state, handle func(context.Context, source.Batch) error) error {
	cp, err := json.Marshal(next)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var todo []deltaItem
	for _, it := range items {
		switch {
		case it.ID == "" || it.Removed != nil || seen[it.ID]:
		case st.Initial && st.Mode == source.StartNow:
		case st.Initial && st.Mode == source.StartUnread && it.IsRead != nil && *it.IsRead:
		default:
			seen[it.ID] = true
			todo = append(todo, it)
		}
	}
	slices.SortStableFunc(todo, func(a, b deltaItem) int { return a.Received.Compare(b.Received) })
	if len(todo) == 0 {
		return handle(ctx, source.Batch{State: cp})
	}
	for start := 0; start < len(todo); start += batchItems {
		chunk := todo[start:min(start+batchItems, len(todo))]
		b := source.Batch{Items: s.fetch(ctx, chunk)}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, it := range b.Items {
			if it.Err != nil && !errors.Is(it.Err, source.ErrVanished) {
				return it.Err
			}
		}
		if start+batchItems >= len(todo) {
			b.State = cp
		}
		if err := handle(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// fetch downloads the MIME of items, MailboxInFlight at a time.
func (s *Source) fetch(ctx context.Context, items []deltaItem) []source.Item {
	out := make([]source.Item, len(items))
	var wg sync.WaitGroup
	sem := make(chan struct{}, MailboxInFlight)
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = s.mime(ctx, it)
		}()
	}
	wg.Wait()
	return out
}

// mime reads one message's $value, keeping only its header when it is
// larger than max_message_bytes.
func (s *Source) mime(ctx context.Context, it deltaItem) source.Item {
	item := source.Item{ServerID: it.ID, Received: it.Received}
	resp, err := s.c.do(ctx, request{method: "GET", url: userPath(s.mb.Address) + "/messages/" + url.PathEscape(it.ID) + "/$value",
		mailbox: s.mb.Address, op: "message MIME of"})
	if err != nil {
		item.Err = err
		return item
	}
	defer resp.Body.Close()
	limit := s.mb.MaxMessageBytes
	if limit <= 0 {
		limit = source.DefaultMaxMessageBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		item.Err = fmt.Errorf("graph message MIME of %s: read: %w", s.mb.Address, err)
		return item
	}
	item.Size = int64(len(data))
	if int64(len(data)) > limit {
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<30)) // the size, for the too_large flag
		item.Size += n
		item.Raw, item.Truncated = header(data), true
		return item
	}
	item.Raw = data
	return item
}

// header is the header of a message (up to its blank line), at most
// headerCap bytes.
func header(data []byte) []byte {
	data = data[:min(len(data), headerCap)]
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(data, sep); i >= 0 {
			return slices.Clone(data[:i+len(sep)])
		}
	}
	return slices.Clone(data)
}
