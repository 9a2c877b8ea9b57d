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
	// Mailbox is the folder to read and how: Address is the SMTP address to
	// impersonate; Folder is "INBOX" (any case) for the distinguished inbox,
	// or a display name looked up with FindFolder; MoveTo is the display
	// name of the folder for after_read move (delete moves to Deleted
	// Items); MaxMessageBytes: larger messages (by the server's Size) are
	// not downloaded whole, their Item carries the header only and
	// Truncated (0: no limit).
	source.Mailbox
	// Client sends the requests; one Client per app registration.
	Client *Client
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
	// mimeSlack is what a GetItem response with MIME content holds besides
	// the base64 of the messages: envelope, ids and properties.
	mimeSlack = 1 << 20
)

// maxSyncPages bounds the SyncFolderItems pages of one poll: Exchange
// folders hold at most about a million items (some 2,000 pages), so a
// server that never says IncludesLastItemInRange cannot keep one poll
// going for ever. The pages already handled are checkpointed. A variable
// for tests.
var maxSyncPages = 4096

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
	churn   int           // streaming connections that ended early, or subscriptions lost, in a row
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
	opts.Mailbox = opts.Mailbox.WithDefaults()
	if err := opts.Mailbox.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{opts: opts, c: opts.Client, log: log.With("mailbox", opts.Address), newMail: make(chan struct{}, 1)}
	var err error
	if s.folder, err = s.resolve(ctx, opts.Folder); err != nil {
		return nil, err
	}
	if _, err := s.c.GetFolder(ctx, opts.Address, s.folder); err != nil {
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
	id, err := s.c.FindFolder(ctx, s.opts.Address, name)
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
		mode = string(s.opts.StartFrom)
	case json.Unmarshal(raw, &st) != nil || st.SyncState == "":
		s.log.Warn("checkpoint unreadable, resyncing the whole folder", "checkpoint_bytes", len(raw))
		st.SyncState, mode = "", "all"
	}
	syncState := st.SyncState
	for pages := 1; ; pages++ {
		var res *SyncResult
		err := s.retryBusy(ctx, func() error {
			var err error
			res, err = s.c.SyncFolderItems(ctx, s.opts.Address, s.folder, syncState, syncPageSize)
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
		if !res.IncludesLastItemInRange && res.SyncState == syncState {
			return fmt.Errorf("SyncFolderItems of %s in %s: the server answered with the same SyncState again and says more "+
				"changes are waiting (IncludesLastItemInRange false): it is not advancing; stopping this poll", s.folder, s.opts.Address)
		}
		if err := s.page(ctx, res, mode, handle); err != nil {
			return err
		}
		syncState = res.SyncState
		if res.IncludesLastItemInRange {
			return nil
		}
		if pages >= maxSyncPages {
			return fmt.Errorf("SyncFolderItems of %s in %s: %d pages in one poll and the server still says more changes are waiting "+
				"(IncludesLastItemInRange never true); stopping this poll, the next one goes on from the last checkpoint", s.folder, s.opts.Address, pages)
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
// header only for larger ones. MIME requests are grouped so that a response
// fits mimeCap; a response that does not fit after all (the sync's sizes
// were missing or wrong) is asked for again item by item, and an item whose
// MIME alone is over the cap gets its header only, like a message over
// MaxMessageBytes.
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
	over := map[string]bool{} // the MIME response of the item alone is over the cap
	limit := s.mimeCap()
	for _, group := range s.mimeGroups(chunk, small, limit) {
		if err := s.getSplit(ctx, group, true, limit, got, over); err != nil {
			return nil, err
		}
	}
	for _, c := range chunk {
		if over[c.ID] {
			s.log.Warn("the message's MIME content is larger than a response may be; keeping its header only",
				"item_id", c.ID, "size", c.Size, "max_response_bytes", limit)
			big = append(big, c.ItemID)
		}
	}
	headersOver := map[string]bool{}
	if len(big) > 0 {
		if err := s.getSplit(ctx, big, false, s.c.opts.MaxResponseBytes, got, headersOver); err != nil {
			return nil, err
		}
	}
	out := make([]source.Item, 0, len(chunk))
	for _, c := range chunk {
		m, ok := got[c.ID]
		switch {
		case headersOver[c.ID]:
			m.Err = fmt.Errorf("the headers of item %s alone are over the limits of a response (%d bytes)", c.ID, s.c.opts.MaxResponseBytes)
		case !ok:
			m.Err = fmt.Errorf("%w: no GetItem result for item %s", errDecode, c.ID)
		}
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
		if s.tooLarge(c.Size) || over[c.ID] {
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

// mimeCap is the response cap for GetItem with MIME content: the client's
// MaxResponseBytes, or more when one message of MaxMessageBytes needs it
// (base64 makes it 4/3 larger). Memory stays bounded by configuration.
func (s *Source) mimeCap() int64 {
	limit := s.c.opts.MaxResponseBytes
	if m := s.opts.MaxMessageBytes; m > 0 {
		limit = max(limit, base64Len(m)+mimeSlack)
	}
	return limit
}

// base64Len is the length of n bytes in base64.
func base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// mimeGroups splits ids into GetItem requests whose MIME content, by the
// sizes the sync reported, fits limit together (an item of unknown size
// counts as nothing; getSplit catches a miss).
func (s *Source) mimeGroups(chunk []ItemChange, ids []ItemID, limit int64) [][]ItemID {
	size := make(map[string]int64, len(chunk))
	for _, c := range chunk {
		size[c.ID] = max(c.Size, 0)
	}
	var groups [][]ItemID
	var cur []ItemID
	var sum int64
	for _, id := range ids {
		n := base64Len(size[id.ID])
		if len(cur) > 0 && (sum+n+mimeSlack > limit || len(cur) == getItemBatch) {
			groups = append(groups, cur)
			cur, sum = nil, 0
		}
		cur = append(cur, id)
		sum += n
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// getSplit fetches ids with one GetItem whose response may be limit bytes
// long. When the response is over its limits, each item is asked for alone;
// an item whose own response is over them is marked in over. Results go to
// got by item id.
func (s *Source) getSplit(ctx context.Context, ids []ItemID, mime bool, limit int64, got map[string]MIMEItem, over map[string]bool) error {
	var items []MIMEItem
	err := s.retryBusy(ctx, func() error {
		var err error
		items, err = s.c.getItems(ctx, s.opts.Address, ids, mime, limit)
		return err
	})
	var ol *overLimitError
	if errors.As(err, &ol) {
		if len(ids) == 1 {
			over[ids[0].ID] = true
			return nil
		}
		s.log.Debug("GetItem response over its limit; fetching the items one by one", "items", len(ids), "err", err)
		for _, id := range ids {
			if err := s.getSplit(ctx, []ItemID{id}, mime, limit, got, over); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		what := "get %d items from %s: %w"
		if !mime {
			what = "get headers of %d items from %s: %w"
		}
		return fmt.Errorf(what, len(ids), s.opts.Address, err)
	}
	for i, it := range items {
		got[ids[i].ID] = it
	}
	return nil
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
			return s.c.MarkRead(ctx, s.opts.Address, ids)
		case "move":
			_, err := s.c.MoveItems(ctx, s.opts.Address, ids, s.moveTo)
			return err
		case "delete":
			return s.c.DeleteItems(ctx, s.opts.Address, ids, "MoveToDeletedItems")
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
