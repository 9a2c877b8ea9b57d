package ews

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/source"
)

func TestGetItemsMIME(t *testing.T) {
	f := newFake(t, serveFile(t, "getitem_mime.xml"))
	ids := []ItemID{{ID: "AAMkADAwATM0MDAAMS1iNmQ0LTQ2AA==", ChangeKey: "x"}, {ID: "AAMkADAwATM0MDAAMS1iNmQ0LTQ3AA=="}}
	items, err := f.client(Options{}).GetItemsMIME(context.Background(), testMailbox, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("got %d items, want 2", len(items))
	}
	for i, want := range []string{"mime1.eml", "mime2.eml"} {
		if it := items[i]; it.Err != nil || !bytes.Equal(it.MIME, readFixture(t, want)) {
			t.Errorf("item %d: err %v, MIME %q, want %s", i, it.Err, it.MIME, want)
		}
	}
	if it := items[0]; it.IsRead || it.Size != int64(len(readFixture(t, "mime1.eml"))+1500) || !it.Received.Equal(time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)) || it.ChangeKey != "CQAAABYAAAB1" {
		t.Errorf("item 0 = %+v", it)
	}
	if !items[1].IsRead {
		t.Errorf("item 1 IsRead = false, want true")
	}

	op := checkEnvelope(t, f.last(), "GetItem")
	shape := strictChild(op, nsMessages, "ItemShape")
	if strictChild(shape, nsTypes, "BaseShape").value() != "IdOnly" || strictChild(shape, nsTypes, "IncludeMimeContent").value() != "true" {
		t.Errorf("ItemShape wrong:\n%s", f.last().body)
	}
	var uris []string
	for _, u := range strictChild(shape, nsTypes, "AdditionalProperties").all(nsTypes, "FieldURI") {
		uris = append(uris, u.attr("FieldURI"))
	}
	if want := []string{"item:DateTimeReceived", "item:Size", "message:IsRead"}; !slices.Equal(uris, want) {
		t.Errorf("AdditionalProperties = %v, want %v", uris, want)
	}
	var sent []string
	for _, id := range strictChild(op, nsMessages, "ItemIds").all(nsTypes, "ItemId") {
		sent = append(sent, id.attr("Id"))
	}
	if !slices.Equal(sent, []string{ids[0].ID, ids[1].ID}) {
		t.Errorf("ItemIds = %v", sent)
	}
}

func TestGetItemsMIMEMixed(t *testing.T) {
	f := newFake(t, serveFile(t, "getitem_mixed.xml"))
	ids := []ItemID{{ID: "a"}, {ID: "gone"}, {ID: "c"}}
	items, err := f.client(Options{}).GetItemsMIME(context.Background(), testMailbox, ids)
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Err != nil || items[2].Err != nil || items[0].MIME == nil || items[2].MIME == nil {
		t.Errorf("items 0 and 2 should be fine: %v, %v", items[0].Err, items[2].Err)
	}
	var re *ResponseError
	if !errors.Is(items[1].Err, ErrItemNotFound) || !errors.As(items[1].Err, &re) || re.Class != "Error" || items[1].ID != "gone" || items[1].MIME != nil {
		t.Errorf("item 1 = %+v, want ErrItemNotFound for id gone", items[1])
	}
}

func TestGetItemsHeaders(t *testing.T) {
	f := newFake(t, serveFile(t, "getitem_headers.xml"))
	items, err := f.client(Options{}).GetItemsHeaders(context.Background(), testMailbox, []ItemID{{ID: "big"}})
	if err != nil || items[0].Err != nil {
		t.Fatal(err, items[0].Err)
	}
	h := string(items[0].MIME)
	if !strings.HasPrefix(h, "Received: from mail.fabrikam.com") || !strings.Contains(h, "\r\nFrom: Bob <bob@fabrikam.com>\r\n") ||
		!strings.HasSuffix(h, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n") || items[0].Size != 80000000 {
		t.Errorf("header block = %q (size %d)", h, items[0].Size)
	}
	shape := strictChild(checkEnvelope(t, f.last(), "GetItem"), nsMessages, "ItemShape")
	if strictChild(shape, nsTypes, "IncludeMimeContent") != nil {
		t.Error("GetItemsHeaders asked for MIME content")
	}
	if !strings.Contains(string(f.last().body), `FieldURI="item:InternetMessageHeaders"`) {
		t.Error("GetItemsHeaders did not ask for item:InternetMessageHeaders")
	}
}

// TestGetItemsMIMEBatches checks that a long slice is split into GetItem
// calls of at most 10 and the answers are put back in order.
func TestGetItemsMIMEBatches(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r recorded) {
		var msgs []string
		for _, id := range strictPath(r.root, nsSOAP, "Body").first().child(nsMessages, "ItemIds").all(nsTypes, "ItemId") {
			mime := "U3ViamVjdDogeA0KDQp4DQo=" // "Subject: x\r\n\r\nx\r\n"
			msgs = append(msgs, okMessage("GetItem", fmt.Sprintf(`<m:Items><t:Message><t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent><t:ItemId Id="%s"/></t:Message></m:Items>`, mime, id.attr("Id"))))
		}
		writeXML(w, 200, responseOf("GetItem", msgs...))
	})
	var ids []ItemID
	for i := range 23 {
		ids = append(ids, ItemID{ID: fmt.Sprintf("id%02d", i)})
	}
	items, err := f.client(Options{}).GetItemsMIME(context.Background(), testMailbox, ids)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range f.requests() {
		sizes = append(sizes, len(strictPath(r.root, nsSOAP, "Body").first().child(nsMessages, "ItemIds").children))
	}
	if !slices.Equal(sizes, []int{10, 10, 3}) {
		t.Errorf("batch sizes = %v, want [10 10 3]", sizes)
	}
	for i, it := range items {
		if it.ID != ids[i].ID || string(it.MIME) != "Subject: x\r\n\r\nx\r\n" {
			t.Errorf("item %d = %s %q", i, it.ID, it.MIME)
		}
	}
}

func TestMarkRead(t *testing.T) {
	f := newFake(t, serveFile(t, "updateitem.xml"))
	ids := []ItemID{{ID: "A1", ChangeKey: "CK1"}, {ID: "A2"}}
	if err := f.client(Options{}).MarkRead(context.Background(), testMailbox, ids); err != nil {
		t.Fatal(err)
	}
	op := checkEnvelope(t, f.last(), "UpdateItem")
	for k, want := range map[string]string{"MessageDisposition": "SaveOnly", "ConflictResolution": "AlwaysOverwrite", "SuppressReadReceipts": "true"} {
		if got := op.attr(k); got != want {
			t.Errorf("UpdateItem %s = %q, want %q", k, got, want)
		}
	}
	changes := strictChild(op, nsMessages, "ItemChanges").all(nsTypes, "ItemChange")
	if len(changes) != 2 {
		t.Fatalf("%d ItemChange, want 2", len(changes))
	}
	for i, ch := range changes {
		if id := strictChild(ch, nsTypes, "ItemId"); id.attr("Id") != ids[i].ID || id.attr("ChangeKey") != ids[i].ChangeKey {
			t.Errorf("ItemChange %d ItemId = %q/%q", i, id.attr("Id"), id.attr("ChangeKey"))
		}
		set := strictPath(ch, nsTypes, "Updates", "SetItemField")
		if strictChild(set, nsTypes, "FieldURI").attr("FieldURI") != "message:IsRead" || strictPath(set, nsTypes, "Message", "IsRead").value() != "true" {
			t.Errorf("ItemChange %d SetItemField wrong:\n%s", i, f.last().body)
		}
	}
}

func TestMoveItems(t *testing.T) {
	f := newFake(t, serveFile(t, "moveitem.xml"))
	got, err := f.client(Options{}).MoveItems(context.Background(), testMailbox, []ItemID{{ID: "A1"}, {ID: "A2"}}, FolderID{ID: "AAMkAFProcessed"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []ItemID{{"AAMkADMovedNew0", "CQAAABYAAAE0"}, {"AAMkADMovedNew1", "CQAAABYAAAE1"}}; !slices.Equal(got, want) {
		t.Errorf("MoveItems() = %v, want %v", got, want)
	}
	op := checkEnvelope(t, f.last(), "MoveItem")
	if strictPath(op, nsMessages, "ToFolderId").child(nsTypes, "FolderId").attr("Id") != "AAMkAFProcessed" {
		t.Errorf("ToFolderId wrong:\n%s", f.last().body)
	}
}

func TestDeleteItems(t *testing.T) {
	f := newFake(t, serveFile(t, "deleteitem.xml"))
	if err := f.client(Options{}).DeleteItems(context.Background(), testMailbox, []ItemID{{ID: "A1"}, {ID: "A2"}}, ""); err != nil {
		t.Fatal(err)
	}
	if dt := checkEnvelope(t, f.last(), "DeleteItem").attr("DeleteType"); dt != "MoveToDeletedItems" {
		t.Errorf("DeleteType = %q, want MoveToDeletedItems", dt)
	}
	f = newFake(t, serveFile(t, "deleteitem_mixed.xml"))
	err := f.client(Options{}).DeleteItems(context.Background(), testMailbox, []ItemID{{ID: "A1"}, {ID: "A2"}}, "HardDelete")
	if !errors.Is(err, ErrItemNotFound) || !strings.Contains(err.Error(), "A2") {
		t.Errorf("DeleteItems() error = %v, want ErrItemNotFound naming A2", err)
	}
	if dt := f.last().root.path(nsSOAP, "Body").first().attr("DeleteType"); dt != "HardDelete" {
		t.Errorf("DeleteType = %q, want HardDelete", dt)
	}
}

func TestFindFolder(t *testing.T) {
	f := newFake(t, serveFile(t, "findfolder.xml"))
	c := f.client(Options{})
	id, err := c.FindFolder(context.Background(), testMailbox, "processed")
	if err != nil || id.ID != "AAMkAFProcessed" || id.ChangeKey != "AQAAAA2" {
		t.Fatalf("FindFolder(processed) = %+v, %v", id, err)
	}
	op := checkEnvelope(t, f.last(), "FindFolder")
	if op.attr("Traversal") != "Deep" || strictPath(op, nsMessages, "ParentFolderIds").child(nsTypes, "DistinguishedFolderId").attr("Id") != "msgfolderroot" {
		t.Errorf("FindFolder request wrong:\n%s", f.last().body)
	}
	_, err = c.FindFolder(context.Background(), testMailbox, "Processed2")
	if !errors.Is(err, ErrFolderNotFound) || !strings.Contains(err.Error(), `"Processed2"`) {
		t.Errorf("FindFolder(missing) error = %v, want ErrFolderNotFound naming it", err)
	}
}

func TestGetFolder(t *testing.T) {
	f := newFake(t, serveFile(t, "getfolder.xml"))
	got, err := f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "Inbox" || got.TotalCount != 42 || got.UnreadCount != 7 || got.ID.ID != "AAMkAFInbox" {
		t.Errorf("GetFolder() = %+v", got)
	}
	checkEnvelope(t, f.last(), "GetFolder")
}

func TestFaults(t *testing.T) {
	tests := []struct {
		file      string
		sentinel  error
		backoff   time.Duration
		transient bool
		permanent bool
	}{
		{"fault_serverbusy.xml", ErrServerBusy, 297749 * time.Millisecond, true, false},
		{"fault_schemavalidation.xml", &ResponseError{Code: "ErrorSchemaValidation"}, 0, false, true},
		{"fault_impersonation.xml", ErrInvalidExchangeImpersonationHeaderData, 0, false, true},
		{"fault_nonexistentmailbox.xml", ErrNonExistentMailbox, 0, false, true},
		{"fault_ewsblocked.xml", ErrEWSBlocked, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := newFake(t, serveFile(t, tt.file))
			_, err := f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
			var re *ResponseError
			if !errors.As(err, &re) || !errors.Is(err, tt.sentinel) {
				t.Fatalf("error = %v, want %v", err, tt.sentinel)
			}
			if re.HTTPStatus != 500 || re.Message == "" {
				t.Errorf("HTTPStatus, Message = %d, %q", re.HTTPStatus, re.Message)
			}
			if re.BackOff != tt.backoff || IsTransient(err) != tt.transient || errors.Is(err, source.ErrPermanent) != tt.permanent {
				t.Errorf("BackOff %v transient %v permanent %v, want %v %v %v", re.BackOff, IsTransient(err), errors.Is(err, source.ErrPermanent), tt.backoff, tt.transient, tt.permanent)
			}
		})
	}
}

func TestEWSBlockedMessage(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ recorded) {
		w.Header().Set("Restrict-Access-Confirm", "1")
		w.WriteHeader(http.StatusForbidden)
	})
	_, err := f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
	if !errors.Is(err, ErrEWSBlocked) || !errors.Is(err, source.ErrPermanent) {
		t.Fatalf("error = %v, want ErrEWSBlocked", err)
	}
	for _, want := range []string{"EwsAllowedAppIDs", "Set-OrganizationConfig -EwsEnabled $true", "1 April 2027"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		code      string
		transient bool
		permanent bool
		backoff   time.Duration
		mention   string
	}{
		{name: "401 no roles", status: 401, header: map[string]string{"x-ms-diagnostics": `2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant"`},
			code: "Unauthorized", permanent: true, mention: "full_access_as_app"},
		{name: "401 wrong audience", status: 401, header: map[string]string{"x-ms-diagnostics": `2000003;reason="The audience claim value is invalid 'https://graph.microsoft.com'.";error_category="invalid_resource"`},
			code: "Unauthorized", permanent: true, mention: "https://outlook.office365.com/.default"},
		{name: "401 expired", status: 401, header: map[string]string{"x-ms-diagnostics": `2000001;reason="The token has expired.";error_category="invalid_token"`},
			code: "Unauthorized", transient: true, mention: "expired"},
		{name: "503", status: 503, header: map[string]string{"Retry-After": "7"}, code: "ServiceUnavailable", transient: true, backoff: 7 * time.Second},
		{name: "502 html", status: 502, body: "<html><body>Bad gateway</body></html>", code: "HTTP502", transient: true},
		{name: "403 plain", status: 403, body: "Forbidden", code: "ErrorAccessDenied", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ recorded) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			})
			dropped := 0
			_, err := f.client(Options{OnUnauthorized: func(string) { dropped++ }}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
			var re *ResponseError
			if !errors.As(err, &re) || re.Code != tt.code || re.HTTPStatus != tt.status {
				t.Fatalf("error = %v, want code %s status %d", err, tt.code, tt.status)
			}
			if IsTransient(err) != tt.transient || errors.Is(err, source.ErrPermanent) != tt.permanent || re.BackOff != tt.backoff {
				t.Errorf("transient %v permanent %v backoff %v, want %v %v %v", IsTransient(err), errors.Is(err, source.ErrPermanent), re.BackOff, tt.transient, tt.permanent, tt.backoff)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.status == 401]; dropped != want {
				t.Errorf("OnUnauthorized called %d times, want %d", dropped, want)
			}
			if tt.status == 401 && re.Diagnostics != tt.header["x-ms-diagnostics"] {
				t.Errorf("Diagnostics = %q", re.Diagnostics)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
}

func TestMalformedResponses(t *testing.T) {
	for _, body := range []string{"not xml at all", `<html><body>proxy login</body></html>`, envelopeOf(""), envelopeOf(`<m:GetItemResponse XMLNS/>`)} {
		f := newFake(t, func(w http.ResponseWriter, _ recorded) { writeXML(w, 200, body) })
		_, err := f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
		if !errors.Is(err, errDecode) || IsTransient(err) {
			t.Errorf("body %q: error = %v, want a non-transient decode error", body, err)
		}
	}
}

func TestMaxResponseBytes(t *testing.T) {
	f := newFake(t, serveFile(t, "getfolder.xml"))
	_, err := f.client(Options{MaxResponseBytes: 100}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
	if err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") || IsTransient(err) {
		t.Errorf("error = %v, want response too large", err)
	}
}

func TestTokenErrorAndNoTokenInLogs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake(t, serveFile(t, "getfolder.xml"))
	c := f.client(Options{Logger: log})
	if _, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), testToken) || !strings.Contains(logs.String(), "GetFolder") {
		t.Errorf("debug log leaks the token or lacks the op:\n%s", logs.String())
	}
	boom := errors.New("AADSTS7000215 invalid client secret")
	c = f.client(Options{Token: func(context.Context) (string, error) { return "", boom }})
	n := len(f.requests())
	if _, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}); !errors.Is(err, boom) {
		t.Errorf("error = %v, want the token error", err)
	}
	if len(f.requests()) != n {
		t.Error("a request was sent without a token")
	}
}

// TestMaxInFlight checks that no more than MaxInFlight requests reach the
// server at once.
func TestMaxInFlight(t *testing.T) {
	var mu sync.Mutex
	inFlight, peak := 0, 0
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r recorded) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		serveFile(t, "getfolder.xml")(w, r)
	})
	c := f.client(Options{MaxInFlight: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			_, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
			errs <- err
		})
	}
	wait.For(t, 10*time.Second, "two requests at the server", func() bool { mu.Lock(); defer mu.Unlock(); return inFlight == 2 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if peak != 2 || len(f.requests()) != 6 {
		t.Errorf("peak in flight %d (want 2), requests %d (want 6)", peak, len(f.requests()))
	}
}

func TestContextCancelWhileWaitingForSlot(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r recorded) { <-release; serveFile(t, "getfolder.xml")(w, r) })
	defer close(release)
	c := f.client(Options{MaxInFlight: 1})
	go c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
	wait.For(t, 10*time.Second, "first request at the server", func() bool { return len(f.requests()) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetFolder(ctx, testMailbox, FolderID{Distinguished: "inbox"}); !errors.Is(err, context.Canceled) || IsTransient(err) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}
