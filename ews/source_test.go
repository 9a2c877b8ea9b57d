package ews

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailpoller/mailpoller/source"
)

// mailbox is the fake server's folder: items by id, and SyncFolderItems
// pages by the sync state they answer.
type mailbox struct {
	mu      sync.Mutex
	items   map[string]fakeItem
	pages   map[string]string // sync state sent → fixture or raw XML
	busy    int               // SyncFolderItems answers ErrorServerBusy this many times first
	syncs   int
	actions map[string][]string // op → item ids
	action  map[string]string   // op → extra response XML for every id (empty: success)
}

type fakeItem struct {
	size int64
	read bool
	gone bool
}

func newMailbox(t *testing.T) (*mailbox, *fakeEWS) {
	mb := &mailbox{
		items: map[string]fakeItem{
			"AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA==": {size: 2048},
			"AAMkADAwATM0MDAAMS1iNmQ0LTQ3AA==": {size: 1024, read: true},
			"AAMkADAwATM0MDAAMS1iNmQ0LTQ4AA==": {size: 80000000},
			"AAMkADAwATM0MDAAMS1iNmQ0LTUyAA==": {size: 512},
		},
		pages: map[string]string{
			"": "syncfolderitems_page1.xml",
			"H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0oQiAYBMk2JBAEOzBiM3mkuwdaUcjKasqgcplVmVdZhZAzO2dvPfee++999577733ROnuIu7/ZuZWUDMBYr3s7Idm8b7/0eEjx49Isq1": "syncfolderitems_last.xml",
			"H4sIAAAAAAAEAGNgYGBgZGBkYmBjYGRgZmBhYGVgZ2BkYmBk": "syncfolderitems_empty.xml",
			"stale": "error_invalidsyncstate.xml",
		},
		actions: map[string][]string{},
		action:  map[string]string{},
	}
	f := newFake(t, func(w http.ResponseWriter, r recorded) { mb.serve(t, w, r) })
	return mb, f
}

func (mb *mailbox) serve(t *testing.T, w http.ResponseWriter, r recorded) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	op := strictPath(r.root, nsSOAP, "Body").first()
	switch r.op {
	case "GetFolder":
		serveFile(t, "getfolder.xml")(w, r)
	case "FindFolder":
		serveFile(t, "findfolder.xml")(w, r)
	case "SyncFolderItems":
		mb.syncs++
		if mb.busy > 0 {
			mb.busy--
			serveFile(t, "error_serverbusy_message.xml")(w, r)
			return
		}
		page, ok := mb.pages[strictChild(op, nsMessages, "SyncState").value()]
		if !ok {
			t.Errorf("unexpected sync state %q", strictChild(op, nsMessages, "SyncState").value())
			page = "error_invalidsyncstate.xml"
		}
		serveFile(t, page)(w, r)
	case "GetItem":
		headers := strings.Contains(string(r.body), "item:InternetMessageHeaders")
		var msgs []string
		for _, idn := range strictChild(op, nsMessages, "ItemIds").all(nsTypes, "ItemId") {
			id := idn.attr("Id")
			it, ok := mb.items[id]
			if !ok || it.gone {
				msgs = append(msgs, errMessage("GetItem", "ErrorItemNotFound"))
				continue
			}
			mb.actions["GetItem"] = append(mb.actions["GetItem"], id)
			content := fmt.Sprintf(`<t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent>`, base64.StdEncoding.EncodeToString([]byte("Subject: "+id+"\r\n\r\nbody\r\n")))
			if headers {
				mb.actions["GetItemHeaders"] = append(mb.actions["GetItemHeaders"], id)
				content = fmt.Sprintf(`<t:InternetMessageHeaders><t:InternetMessageHeader HeaderName="Subject">%s</t:InternetMessageHeader></t:InternetMessageHeaders>`, id)
			}
			msgs = append(msgs, okMessage("GetItem", fmt.Sprintf(`<m:Items><t:Message>%s<t:ItemId Id="%s" ChangeKey="CK"/><t:DateTimeReceived>2026-03-02T09:15:00Z</t:DateTimeReceived><t:Size>%d</t:Size><t:IsRead>%v</t:IsRead></t:Message></m:Items>`, content, id, it.size, it.read)))
		}
		writeXML(w, 200, responseOf("GetItem", msgs...))
	case "UpdateItem", "MoveItem", "DeleteItem":
		var ids []*node
		if r.op == "UpdateItem" {
			for _, ch := range strictChild(op, nsMessages, "ItemChanges").all(nsTypes, "ItemChange") {
				ids = append(ids, strictChild(ch, nsTypes, "ItemId"))
			}
		} else {
			ids = strictChild(op, nsMessages, "ItemIds").all(nsTypes, "ItemId")
		}
		var msgs []string
		for _, idn := range ids {
			id := idn.attr("Id")
			mb.actions[r.op] = append(mb.actions[r.op], id)
			if it, ok := mb.items[id]; !ok || it.gone {
				msgs = append(msgs, errMessage(r.op, "ErrorItemNotFound"))
				continue
			}
			inner := ""
			if r.op == "MoveItem" {
				inner = `<m:Items><t:Message><t:ItemId Id="moved-` + id + `"/></t:Message></m:Items>`
			}
			msgs = append(msgs, okMessage(r.op, inner))
		}
		writeXML(w, 200, responseOf(r.op, msgs...))
	default:
		t.Errorf("unexpected operation %q", r.op)
		w.WriteHeader(500)
	}
}

func (mb *mailbox) did(op string) []string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return slices.Clone(mb.actions[op])
}

func openSource(t *testing.T, f *fakeEWS, mb source.Mailbox) *Source {
	t.Helper()
	mb.Address = testMailbox
	opts := SourceOptions{Mailbox: mb, Client: f.client(Options{}), Logger: slog.New(slog.DiscardHandler)}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 50 << 20
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// collect runs Poll and returns what it handed over.
func collect(t *testing.T, s *Source, state []byte) ([]source.Batch, error) {
	t.Helper()
	var batches []source.Batch
	err := s.Poll(context.Background(), state, func(_ context.Context, b source.Batch) error {
		batches = append(batches, b)
		return nil
	})
	return batches, err
}

func stateOf(t *testing.T, b []byte) string {
	t.Helper()
	if b == nil {
		return "<nil>"
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state %q is not JSON: %v", b, err)
	}
	return st.SyncState
}

// summary renders batches as "id,id|state" lines for comparison.
func summary(t *testing.T, batches []source.Batch) []string {
	var out []string
	for _, b := range batches {
		var ids []string
		for _, it := range b.Items {
			s := it.ServerID[len(it.ServerID)-6:]
			if it.Truncated {
				s += "(T)"
			}
			if it.Err != nil {
				s += "(E)"
			}
			ids = append(ids, s)
		}
		st := stateOf(t, b.State)
		if name, ok := stateNames[st]; ok {
			st = name
		}
		out = append(out, strings.Join(ids, ",")+"|"+st)
	}
	return out
}

// stateNames shortens the fixtures' sync states in summaries.
var stateNames = map[string]string{
	"H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0oQiAYBMk2JBAEOzBiM3mkuwdaUcjKasqgcplVmVdZhZAzO2dvPfee++999577733ROnuIu7/ZuZWUDMBYr3s7Idm8b7/0eEjx49Isq1": "P1",
	"H4sIAAAAAAAEAGNgYGBgZGBkYmBjYGRgZmBhYGVgZ2BkYmBk":     "P2",
	"H4sIAAAAAAAEAGNgYGBgZGBkYmBjYGRgZmBhYGVgZ2BkYmBkAAAA": "P3",
}

func TestPollFirstRun(t *testing.T) {
	tests := []struct {
		startFrom string
		want      []string
	}{
		// page 1 oldest first: LTQ3 (1 Mar), LTQ2 (2 Mar), LTQ4 (3 Mar, 80 MB: headers only).
		{"all", []string{"Q3AA==,Q2AA==,Q4AA==(T)|P1", "UyAA==|P2"}},
		{"unread", []string{"Q2AA==,Q4AA==(T)|P1", "UyAA==|P2"}},
		{"now", []string{"|P1", "|P2"}},
	}
	for _, tt := range tests {
		t.Run(tt.startFrom, func(t *testing.T) {
			mb, f := newMailbox(t)
			s := openSource(t, f, source.Mailbox{StartFrom: source.StartFrom(tt.startFrom)})
			batches, err := collect(t, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := summary(t, batches)
			if !slices.Equal(got, tt.want) {
				t.Errorf("batches = %q, want %q", got, tt.want)
			}
			if tt.startFrom == "now" && len(mb.did("GetItem")) != 0 {
				t.Errorf("start_from now fetched %v", mb.did("GetItem"))
			}
			if tt.startFrom != "now" {
				if h := mb.did("GetItemHeaders"); !slices.Equal(h, []string{"AAMkADAwATM0MDAAMS1iNmQ0LTQ4AA=="}) {
					t.Errorf("headers fetched for %v, want only the 80 MB item", h)
				}
				for _, b := range batches {
					for _, it := range b.Items {
						if it.Truncated && (!strings.HasPrefix(string(it.Raw), "Subject: ") || it.Size != 80000000) {
							t.Errorf("truncated item Raw %q Size %d", it.Raw, it.Size)
						}
						if !it.Truncated && string(it.Raw) != "Subject: "+it.ServerID+"\r\n\r\nbody\r\n" {
							t.Errorf("item %s Raw = %q", it.ServerID, it.Raw)
						}
						if it.Received.IsZero() || it.UID != 0 {
							t.Errorf("item %s Received %v UID %d", it.ServerID, it.Received, it.UID)
						}
					}
				}
			}
		})
	}
}

func TestPollWithState(t *testing.T) {
	_, f := newMailbox(t)
	s := openSource(t, f, source.Mailbox{})
	batches, err := collect(t, s, []byte(`{"sync_state":"H4sIAAAAAAAEAGNgYGBgZGBkYmBjYGRgZmBhYGVgZ2BkYmBk"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(t, batches); !slices.Equal(got, []string{"|P3"}) {
		t.Errorf("batches = %q, want one empty batch with the new state", got)
	}
}

func TestPollInvalidSyncStateResyncsEverything(t *testing.T) {
	_, f := newMailbox(t)
	s := openSource(t, f, source.Mailbox{StartFrom: "now"})
	batches, err := collect(t, s, []byte(`{"sync_state":"stale"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Q3AA==,Q2AA==,Q4AA==(T)|P1", "UyAA==|P2"}
	if got := summary(t, batches); !slices.Equal(got, want) {
		t.Errorf("batches = %q, want a full replay %q", got, want)
	}
}

func TestPollVanishedItem(t *testing.T) {
	mb, f := newMailbox(t)
	mb.items["AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA=="] = fakeItem{gone: true}
	s := openSource(t, f, source.Mailbox{StartFrom: "all"})
	batches, err := collect(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	it := batches[0].Items[1]
	if it.ServerID != "AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA==" || !errors.Is(it.Err, ErrItemNotFound) || it.Raw != nil {
		t.Errorf("vanished item = %+v, want Err ErrItemNotFound", it)
	}
}

func TestPollServerBusy(t *testing.T) {
	fastBackoff(t)
	mb, f := newMailbox(t)
	mb.busy = 2
	s := openSource(t, f, source.Mailbox{StartFrom: "now"})
	if _, err := collect(t, s, nil); err != nil {
		t.Fatalf("Poll() after two busy replies = %v, want success", err)
	}
	if mb.syncs != 4 {
		t.Errorf("%d SyncFolderItems calls, want 4 (2 busy + 2 pages)", mb.syncs)
	}
	mb.busy, mb.syncs = 100, 0
	_, err := collect(t, s, nil)
	if !errors.Is(err, ErrServerBusy) {
		t.Errorf("Poll() with a busy server = %v, want ErrServerBusy", err)
	}
	if mb.syncs != busyRetries+1 {
		t.Errorf("%d SyncFolderItems calls, want %d", mb.syncs, busyRetries+1)
	}
}

func TestPollHandleErrorStops(t *testing.T) {
	_, f := newMailbox(t)
	s := openSource(t, f, source.Mailbox{StartFrom: "all"})
	boom := errors.New("publish failed")
	calls := 0
	err := s.Poll(context.Background(), nil, func(context.Context, source.Batch) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("Poll() = %v after %d calls, want the handler's error after 1", err, calls)
	}
}

func TestPollCancelledDuringBackoff(t *testing.T) {
	mb, f := newMailbox(t)
	mb.pages[""] = "error_serverbusy_message.xml"
	s := openSource(t, f, source.Mailbox{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Poll(ctx, nil, func(context.Context, source.Batch) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Poll() = %v, want context.Canceled", err)
	}
}

func TestAfterRead(t *testing.T) {
	items := []source.Item{
		{ServerID: "AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA=="},
		{ServerID: "vanished-since"},
		{ServerID: "AAMkADAwATM0MDAAMS1iNmQ0LTUyAA=="},
		{ServerID: "dead-lettered", Err: ErrItemNotFound},
	}
	want := []string{"AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA==", "vanished-since", "AAMkADAwATM0MDAAMS1iNmQ0LTUyAA=="}
	tests := []struct {
		afterRead, op string
		check         func(t *testing.T, r recorded)
	}{
		{"mark_read", "UpdateItem", func(t *testing.T, r recorded) {
			if strictPath(r.root, nsSOAP, "Body").first().attr("SuppressReadReceipts") != "true" {
				t.Error("SuppressReadReceipts not set")
			}
		}},
		{"move", "MoveItem", func(t *testing.T, r recorded) {
			if id := strictPath(r.root, nsSOAP, "Body").first().path(nsMessages, "ToFolderId").child(nsTypes, "FolderId").attr("Id"); id != "AAMkAFProcessed" {
				t.Errorf("ToFolderId = %q, want the Processed folder", id)
			}
		}},
		{"delete", "DeleteItem", func(t *testing.T, r recorded) {
			if dt := strictPath(r.root, nsSOAP, "Body").first().attr("DeleteType"); dt != "MoveToDeletedItems" {
				t.Errorf("DeleteType = %q", dt)
			}
		}},
		{"none", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.afterRead, func(t *testing.T) {
			mb, f := newMailbox(t)
			s := openSource(t, f, source.Mailbox{AfterRead: source.AfterRead(tt.afterRead), MoveTo: "PROCESSED"})
			n := len(f.requests())
			if err := s.AfterRead(context.Background(), items); err != nil {
				t.Fatalf("AfterRead() = %v (a vanished item is not an error)", err)
			}
			if tt.op == "" {
				if len(f.requests()) != n {
					t.Errorf("after_read none sent %d requests", len(f.requests())-n)
				}
				return
			}
			if got := mb.did(tt.op); !slices.Equal(got, want) {
				t.Errorf("%s on %v, want %v", tt.op, got, want)
			}
			checkEnvelope(t, f.last(), tt.op)
			tt.check(t, f.last())
		})
	}
}

func TestOpenErrors(t *testing.T) {
	_, f := newMailbox(t)
	_, err := Open(context.Background(), SourceOptions{Client: f.client(Options{}), Mailbox: source.Mailbox{Address: testMailbox, AfterRead: "move", MoveTo: "Nowhere"}})
	if !errors.Is(err, source.ErrPermanent) || !errors.Is(err, ErrFolderNotFound) || !strings.Contains(err.Error(), "Nowhere") {
		t.Errorf("Open(move_to missing) = %v, want a permanent folder-not-found error", err)
	}
	_, err = Open(context.Background(), SourceOptions{Client: f.client(Options{}), Mailbox: source.Mailbox{Address: testMailbox, Folder: "Missing"}})
	if !errors.Is(err, source.ErrPermanent) {
		t.Errorf("Open(folder missing) = %v, want permanent", err)
	}
	g := newFake(t, serveFile(t, "fault_nonexistentmailbox.xml"))
	_, err = Open(context.Background(), SourceOptions{Client: g.client(Options{}), Mailbox: source.Mailbox{Address: testMailbox}})
	if !errors.Is(err, source.ErrPermanent) || !errors.Is(err, ErrNonExistentMailbox) {
		t.Errorf("Open(no mailbox) = %v, want permanent ErrNonExistentMailbox", err)
	}
	// The folder named in the config is used for the sync.
	s := openSource(t, f, source.Mailbox{Folder: "Archive", StartFrom: "now"})
	if s.folder.ID != "AAMkAFArchive" {
		t.Errorf("folder = %+v, want Archive's id", s.folder)
	}
}

// TestPollFallsBackToGetItem covers servers whose sync reports neither
// IsRead nor Size: the unread filter and the size limit then use GetItem's
// values.
func TestPollFallsBackToGetItem(t *testing.T) {
	mb, f := newMailbox(t)
	mb.pages[""] = "syncfolderitems_defaultns.xml" // Create AAMkADefaultNs1, IsRead false, no Size
	mb.items["AAMkADefaultNs1"] = fakeItem{size: 5000}
	s := openSource(t, f, source.Mailbox{StartFrom: "all", MaxMessageBytes: 100})
	batches, err := collect(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	it := batches[0].Items[0]
	if !it.Truncated || string(it.Raw) != "Subject: AAMkADefaultNs1\r\n\r\n" || it.Size != 5000 {
		t.Errorf("item = %+v, want the header only, Truncated, Size 5000", it)
	}

	mb.pages[""] = "syncfolderitems_swapped.xml" // Create AAMkADSwapped1 without IsRead
	mb.items["AAMkADSwapped1"] = fakeItem{size: 77, read: true}
	s = openSource(t, f, source.Mailbox{StartFrom: "unread"})
	batches, err = collect(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(t, batches); !slices.Equal(got, []string{"|c3RhdGUtc3dhcHBlZA=="}) {
		t.Errorf("batches = %q, want the read item dropped and the state kept", got)
	}
}
