package ews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

// SourceOptions say which folder of which mailbox a Source reads and what
// it does with handled mail.
type SourceOptions struct {
	// Client sends the requests; one Client per app registration.
	Client *Client
	// Mailbox is the SMTP address to impersonate.
	Mailbox string
	// Folder is "INBOX" (any case, or "") for the distinguished inbox, or a
	// display name looked up with FindFolder.
	Folder string
	// StartFrom decides the first run without a checkpoint: unread (default),
	// all, or now.
	StartFrom string
	// AfterRead is mark_read (default), move, delete (to Deleted Items) or
	// none.
	AfterRead string
	// MoveTo is the display name of the folder for AfterRead move.
	MoveTo string
	// MaxMessageBytes: larger messages (by the server's Size) are not
	// downloaded; their Item carries the header only and Truncated. 0 means
	// no limit.
	MaxMessageBytes int64
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Busy retries: ErrorServerBusy is retried in place after the server's
// BackOff when that is short; a longer wait goes back to the poller.
const (
	busyRetries     = 5
	busyMaxWait     = 30 * time.Second
	busyDefaultWait = time.Second // when the server gives no BackOffMilliseconds
	syncPageSize    = 512
)

// Source reads one EWS folder with SyncFolderItems. It implements
// source.Source and is not safe for concurrent use.
type Source struct {
	opts    SourceOptions
	c       *Client
	folder  FolderID
	moveTo  FolderID
	log     *slog.Logger
	subID   string        // streaming subscription, "" before Subscribe
	noPush  bool          // streaming refused: wait the poll interval instead
	stream  *stream       // the open streaming connection, if any
	newMail chan struct{} // a notification came since the last Wait
}

// state is the checkpoint stored in the KV bucket (DESIGN.md §5).
type state struct {
	SyncState string `json:"sync_state"`
}

// Open resolves the folder (and the move_to folder) and checks with
// GetFolder that the app may read the mailbox. Errors only an admin can fix
// (missing folder, no permission, EWS blocked) match source.ErrPermanent.
func Open(ctx context.Context, opts SourceOptions) (*Source, error) {
	if opts.Client == nil {
		return nil, errors.New("ews: SourceOptions.Client is nil")
	}
	if opts.StartFrom == "" {
		opts.StartFrom = "unread"
	}
	if opts.AfterRead == "" {
		opts.AfterRead = "mark_read"
	}
	switch opts.AfterRead {
	case "mark_read", "move", "delete", "none":
	default:
		return nil, fmt.Errorf("unknown after_read %q: %w", opts.AfterRead, source.ErrPermanent)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{opts: opts, c: opts.Client, log: log.With("mailbox", opts.Mailbox), newMail: make(chan struct{}, 1)}
	var err error
	if s.folder, err = s.resolve(ctx, opts.Folder); err != nil {
		return nil, err
	}
	if _, err := s.c.GetFolder(ctx, opts.Mailbox, s.folder); err != nil {
		return nil, err
	}
	if opts.AfterRead == "move" {
		if opts.MoveTo == "" {
			return nil, fmt.Errorf("after_read move needs move_to: %w", source.ErrPermanent)
		}
		if s.moveTo, err = s.resolve(ctx, opts.MoveTo); err != nil {
			return nil, fmt.Errorf("move_to: %w", err)
		}
	}
	return s, nil
}

// resolve maps a configured folder name to a FolderID.
func (s *Source) resolve(ctx context.Context, name string) (FolderID, error) {
	if name == "" || strings.EqualFold(name, "inbox") {
		return FolderID{Distinguished: "inbox"}, nil
	}
	id, err := s.c.FindFolder(ctx, s.opts.Mailbox, name)
	if errors.Is(err, ErrFolderNotFound) {
		return FolderID{}, fmt.Errorf("%w (%w)", err, source.ErrPermanent)
	}
	return id, err
}

// Poll implements source.Source. It calls SyncFolderItems until the server
// has nothing more, and hands the new items of each page over in batches of
// up to 10; the last batch of a page carries the page's sync state.
//
// Within a page, items are handed over oldest first (by DateTimeReceived):
// Exchange Online lists changes newest first. Across pages the server's
// order stands, because each page's state covers the whole page.
//
// First run (state nil): "all" hands over every item in the folder,
// "unread" only unread ones (IsRead from the sync, or from GetItem when the
// sync did not say), "now" pages through the whole folder and hands over
// only the states. An invalid saved state (ErrInvalidSyncStateData) starts
// a full resync that hands over every item in the folder, whatever
// StartFrom says: some of them may have arrived since the last checkpoint,
// and the event id (from the ItemId) absorbs the duplicates.
func (s *Source) Poll(ctx context.Context, raw []byte, handle func(context.Context, source.Batch) error) error {
	var st state
	mode := "new" // hand over every Create
	switch {
	case raw == nil:
		mode = s.opts.StartFrom
	case json.Unmarshal(raw, &st) != nil || st.SyncState == "":
		s.log.Warn("checkpoint unreadable, resyncing the whole folder", "checkpoint_bytes", len(raw))
		st.SyncState, mode = "", "all"
	}
	syncState := st.SyncState
	for {
		var res *SyncResult
		err := s.retryBusy(ctx, func() error {
			var err error
			res, err = s.c.SyncFolderItems(ctx, s.opts.Mailbox, s.folder, syncState, syncPageSize)
			return err
		})
		if errors.Is(err, ErrInvalidSyncStateData) && syncState != "" && syncState == st.SyncState {
			s.log.Warn("sync state no longer valid, resyncing the whole folder; duplicates carry the same event id")
			syncState, mode = "", "all"
			st.SyncState = ""
			continue
		}
		if err != nil {
			return err
		}
		if err := s.page(ctx, res, mode, handle); err != nil {
			return err
		}
		syncState = res.SyncState
		if res.IncludesLastItemInRange {
			return nil
		}
	}
}

// page hands over the creates of one SyncFolderItems response.
func (s *Source) page(ctx context.Context, res *SyncResult, mode string, handle func(context.Context, source.Batch) error) error {
	stateJSON, err := json.Marshal(state{SyncState: res.SyncState})
	if err != nil {
		return err
	}
	creates := res.Creates
	if mode == "now" {
		creates = nil
	}
	if mode == "unread" {
		creates = slices.DeleteFunc(slices.Clone(creates), func(c ItemChange) bool { return c.IsRead != nil && *c.IsRead })
	}
	slices.SortStableFunc(creates, func(a, b ItemChange) int { return a.Received.Compare(b.Received) })
	for start := 0; start < len(creates); start += getItemBatch {
		chunk := creates[start:min(start+getItemBatch, len(creates))]
		items, err := s.fetch(ctx, chunk, mode == "unread")
		if err != nil {
			return err
		}
		b := source.Batch{Items: items}
		if start+getItemBatch >= len(creates) {
			b.State = stateJSON
		}
		if len(b.Items) == 0 && b.State == nil {
			continue
		}
		if err := handle(ctx, b); err != nil {
			return err
		}
	}
	if len(creates) == 0 {
		return handle(ctx, source.Batch{State: stateJSON})
	}
	return nil
}

// fetch downloads one chunk: MIME for messages within the size limit, the
// header only for larger ones.
func (s *Source) fetch(ctx context.Context, chunk []ItemChange, unreadOnly bool) ([]source.Item, error) {
	var small, big []ItemID
	for _, c := range chunk {
		if s.tooLarge(c.Size) {
			big = append(big, c.ItemID)
		} else {
			small = append(small, c.ItemID)
		}
	}
	got := make(map[string]MIMEItem, len(chunk))
	for _, part := range []struct {
		ids  []ItemID
		mime bool
	}{{small, true}, {big, false}} {
		if len(part.ids) == 0 {
			continue
		}
		var items []MIMEItem
		err := s.retryBusy(ctx, func() error {
			var err error
			if part.mime {
				items, err = s.c.GetItemsMIME(ctx, s.opts.Mailbox, part.ids)
			} else {
				items, err = s.c.GetItemsHeaders(ctx, s.opts.Mailbox, part.ids)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			got[part.ids[i].ID] = it
		}
	}
	out := make([]source.Item, 0, len(chunk))
	for _, c := range chunk {
		m := got[c.ID]
		if m.Err != nil {
			if errors.Is(m.Err, ErrItemNotFound) {
				s.log.Info("item vanished before it could be fetched", "item_id", c.ID)
			}
			out = append(out, source.Item{ServerID: c.ID, Size: c.Size, Received: c.Received, Err: m.Err})
			continue
		}
		if unreadOnly && c.IsRead == nil && m.IsRead {
			continue
		}
		it := source.Item{ServerID: c.ID, Raw: m.MIME, Size: m.Size, Received: m.Received}
		if it.Size == 0 {
			it.Size = max(c.Size, int64(len(m.MIME)))
		}
		if it.Received.IsZero() {
			it.Received = c.Received
		}
		if s.tooLarge(c.Size) {
			it.Truncated = true
		} else if s.tooLarge(it.Size) || s.tooLarge(int64(len(it.Raw))) {
			// The sync did not report the size: the MIME came whole, keep
			// the header only.
			it.Raw, it.Truncated = header(it.Raw), true
		}
		out = append(out, it)
	}
	return out, nil
}

func (s *Source) tooLarge(size int64) bool {
	return s.opts.MaxMessageBytes > 0 && size > s.opts.MaxMessageBytes
}

// header returns the header section of a message, blank line included.
func header(raw []byte) []byte {
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := strings.Index(string(raw), sep); i >= 0 {
			return raw[:i+len(sep)]
		}
	}
	return raw
}

// retryBusy runs call again after ErrorServerBusy's back-off, at most
// busyRetries times and only while the back-off is short; otherwise the
// error goes to the poller, whose wait honours Backoff.
func (s *Source) retryBusy(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if !errors.Is(err, ErrServerBusy) || attempt > busyRetries {
			return err
		}
		wait, ok := Backoff(err)
		if !ok {
			wait = busyDefaultWait
		}
		if wait > busyMaxWait {
			return err
		}
		s.log.Info("server busy, backing off", "wait", wait, "attempt", attempt)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// AfterRead implements source.Source. Items that vanished in the meantime
// (ErrItemNotFound) are skipped; items with Err are not acted on.
func (s *Source) AfterRead(ctx context.Context, items []source.Item) error {
	if s.opts.AfterRead == "none" || len(items) == 0 {
		return nil
	}
	ids := make([]ItemID, 0, len(items))
	for _, it := range items {
		if it.Err == nil && it.ServerID != "" {
			ids = append(ids, ItemID{ID: it.ServerID})
		}
	}
	if len(ids) == 0 {
		return nil
	}
	err := s.retryBusy(ctx, func() error {
		switch s.opts.AfterRead {
		case "mark_read":
			return s.c.MarkRead(ctx, s.opts.Mailbox, ids)
		case "move":
			_, err := s.c.MoveItems(ctx, s.opts.Mailbox, ids, s.moveTo)
			return err
		case "delete":
			return s.c.DeleteItems(ctx, s.opts.Mailbox, ids, "MoveToDeletedItems")
		}
		return fmt.Errorf("unknown after_read %q", s.opts.AfterRead)
	})
	if err = dropNotFound(err); err != nil {
		return fmt.Errorf("after_read %s: %w", s.opts.AfterRead, err)
	}
	return nil
}

// dropNotFound removes ErrItemNotFound from a joined per-item error.
func dropNotFound(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if errors.Is(err, ErrItemNotFound) {
			return nil
		}
		return err
	}
	var keep []error
	for _, e := range j.Unwrap() {
		if !errors.Is(e, ErrItemNotFound) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}

// Close implements source.Source; the Client holds no connection of its own.
func (s *Source) Close() error {
	s.closeStream()
	return nil
}
