package ews

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/memtest"
	"github.com/mailpoller/mailpoller/source"
)

// Tests against EWS servers that misbehave on purpose, each in one way.

// streamBody answers with head, then chunk repeated until total bytes
// are sent or the client hangs up, then tail.
func streamBody(head, chunk, tail string, total int) func(http.ResponseWriter, recorded) {
	return func(w http.ResponseWriter, _ recorded) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, head)
		c := []byte(chunk)
		for sent := 0; sent < total; sent += len(c) {
			if _, err := w.Write(c); err != nil {
				return
			}
		}
		io.WriteString(w, tail)
	}
}

const folderHead = `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="` + nsSOAP + `"><s:Body><m:GetFolderResponse xmlns:m="` + nsMessages +
	`" xmlns:t="` + nsTypes + `"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder>`
const folderTail = `</t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>`

// TestHostileMarkupIsCheap: responses of 60 MB (within the 64 MiB byte
// cap) built to decode into gigabytes — tiny elements, one giant tag, many
// tags full of attributes — are refused after a few MiB of allocation.
func TestHostileMarkupIsCheap(t *testing.T) {
	const total = 60 << 20
	attrs := func(n int) string {
		var b strings.Builder
		b.WriteString("<t:x")
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, ` a%d=""`, i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, chunk, want string
	}{
		{"60 MB of <t:a/>", strings.Repeat("<t:a/>", 1<<14), "more than 50000 elements and attributes"},
		{"one tag of 60 MB of attributes", attrs(1 << 16)[4:], "tag longer than 64 KiB"}, // the chunks continue one tag
		{"60 KB tags of attributes", attrs(60<<10) + "/>", "more than 50000 elements and attributes"},
		{"60 MB nested 64 deep", strings.Repeat("<t:a>", 65), "nested deeper than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := folderHead
			if strings.HasPrefix(tc.name, "one tag") {
				head += "<t:x"
			}
			f := newFake(t, streamBody(head, tc.chunk, folderTail, total))
			var err error
			n := memtest.Allocated(func() {
				_, err = f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) || IsTransient(err) {
				t.Fatalf("GetFolder() = %v, want a permanent %q error", err, tc.want)
			}
			if n > 64<<20 {
				t.Errorf("decoding a hostile 60 MB response allocated %d MiB, want under 64", n>>20)
			}
			t.Logf("%s: refused after %.1f MiB allocated", tc.name, float64(n)/(1<<20))
		})
	}
}

// bigMailbox serves one sync page listing its items and GetItem for them,
// for the MIME batching tests.
type bigMailbox struct {
	mu      sync.Mutex
	raw     map[string][]byte
	size    map[string]int64 // the size the sync reports; 0: none
	order   []string
	getItem [][]string // ids of each GetItem with MIME
	headers [][]string // ids of each GetItem for headers
}

func (mb *bigMailbox) serve(t *testing.T, w http.ResponseWriter, r recorded) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	op := strictPath(r.root, nsSOAP, "Body").first()
	switch r.op {
	case "GetFolder":
		serveFile(t, "getfolder.xml")(w, r)
	case "SyncFolderItems":
		var b strings.Builder
		for _, id := range mb.order {
			size := ""
			if mb.size[id] > 0 {
				size = fmt.Sprintf("<t:Size>%d</t:Size>", mb.size[id])
			}
			fmt.Fprintf(&b, `<t:Create><t:Message><t:ItemId Id="%s"/><t:DateTimeReceived>2026-03-04T11:00:00Z</t:DateTimeReceived>%s<t:IsRead>false</t:IsRead></t:Message></t:Create>`, id, size)
		}
		writeXML(w, 200, responseOf("SyncFolderItems", okMessage("SyncFolderItems",
			`<m:SyncState>s1</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange><m:Changes>`+b.String()+`</m:Changes>`)))
	case "GetItem":
		headers := strings.Contains(string(r.body), "item:InternetMessageHeaders")
		var ids, msgs []string
		for _, idn := range strictChild(op, nsMessages, "ItemIds").all(nsTypes, "ItemId") {
			id := idn.attr("Id")
			ids = append(ids, id)
			raw := mb.raw[id]
			content := `<t:MimeContent CharacterSet="UTF-8">` + base64.StdEncoding.EncodeToString(raw) + `</t:MimeContent>`
			if headers {
				content = `<t:InternetMessageHeaders><t:InternetMessageHeader HeaderName="Subject">` + id + `</t:InternetMessageHeader></t:InternetMessageHeaders>`
			}
			msgs = append(msgs, okMessage("GetItem", fmt.Sprintf(`<m:Items><t:Message>%s<t:ItemId Id="%s"/><t:Size>%d</t:Size></t:Message></m:Items>`, content, id, len(raw))))
		}
		if headers {
			mb.headers = append(mb.headers, ids)
		} else {
			mb.getItem = append(mb.getItem, ids)
		}
		writeXML(w, 200, responseOf("GetItem", msgs...))
	default:
		t.Errorf("unexpected operation %q", r.op)
		w.WriteHeader(500)
	}
}

// message is an RFC 5322 message of about n bytes.
func message(id string, n int) []byte {
	return []byte("Subject: " + id + "\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", n/18))
}

// TestBigMIMEBatchedToFit: messages up to max_message_bytes still arrive
// whole although ten of them (or one, in base64) do not fit the client's
// MaxResponseBytes. GetItem requests are grouped by the sizes the sync
// reports; a batch that is over the cap anyway (sizes missing or wrong) is
// fetched item by item; a message whose MIME alone is over the cap becomes
// its header with Truncated, like any message over max_message_bytes.
func TestBigMIMEBatchedToFit(t *testing.T) {
	const maxResp, maxMsg = 256 << 10, 512 << 10
	mb := &bigMailbox{raw: map[string][]byte{}, size: map[string]int64{}}
	add := func(id string, n int, reported int64) {
		mb.raw[id] = message(id, n)
		mb.size[id] = reported
		mb.order = append(mb.order, id)
	}
	for i := range 3 {
		id := fmt.Sprintf("big-%d", i)
		add(id, 400<<10, int64(400<<10)) // 400 KB: 533 KB in base64, over the 256 KiB cap
	}
	add("small", 2000, 2000)
	add("unknown-1", 300<<10, 0) // the sync does not say how big
	add("unknown-2", 300<<10, 0)
	add("liar", 2<<20, 1000) // says 1 KB, is 2 MB
	f := newFake(t, func(w http.ResponseWriter, r recorded) { mb.serve(t, w, r) })
	s, err := Open(context.Background(), SourceOptions{Client: f.client(Options{MaxResponseBytes: maxResp}),
		Mailbox: source.Mailbox{Address: testMailbox, StartFrom: "all", MaxMessageBytes: maxMsg}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var batches []source.Batch
	n := memtest.Allocated(func() { batches, err = collect(t, s, nil) })
	if err != nil {
		t.Fatalf("Poll() = %v, want every message", err)
	}
	got := map[string]source.Item{}
	for _, b := range batches {
		for _, it := range b.Items {
			got[it.ServerID] = it
		}
	}
	for _, id := range mb.order {
		it, ok := got[id]
		switch {
		case !ok || it.Err != nil:
			t.Errorf("%s: missing or failed (%v)", id, it.Err)
		case id == "liar":
			if !it.Truncated || !bytes.HasPrefix(it.Raw, []byte("Subject: liar")) || it.Size != int64(len(mb.raw[id])) {
				t.Errorf("liar: Truncated %v, %d raw bytes, size %d; want its header only, truncated, with the real size", it.Truncated, len(it.Raw), it.Size)
			}
		case it.Truncated || !bytes.Equal(it.Raw, mb.raw[id]):
			t.Errorf("%s: Truncated %v, %d of %d bytes; want the whole message", id, it.Truncated, len(it.Raw), len(mb.raw[id]))
		}
	}
	if len(mb.headers) != 1 || len(mb.headers[0]) != 1 || mb.headers[0][0] != "liar" {
		t.Errorf("header requests %v, want one for the liar", mb.headers)
	}
	t.Logf("GetItem requests with MIME: %v; for headers: %v; response cap %.1f MiB; %.0f MiB allocated in all (server included)",
		mb.getItem, mb.headers, float64(s.mimeCap())/(1<<20), float64(n)/(1<<20))
}

// TestNoRedirects: an https EWS server that redirects (307) to plain http
// never gets the bearer token (nor anything else) sent there, for ordinary
// requests and for streaming; the error names the target without its query.
func TestNoRedirects(t *testing.T) {
	var caught atomic.Int32
	catcher := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caught.Add(1)
		w.WriteHeader(200)
	}))
	t.Cleanup(catcher.Close)
	target := catcher.URL + "/EWS/Exchange.asmx"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"?access_token=leak", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	hc := srv.Client()
	c := NewClient(Options{URL: srv.URL + "/EWS/Exchange.asmx", HTTPClient: hc, Logger: slog.New(slog.DiscardHandler),
		Token: func(context.Context) (string, error) { return testToken, nil }})
	_, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != "Redirect" || !errors.Is(err, source.ErrPermanent) {
		t.Fatalf("GetFolder() = %v, want a permanent Redirect error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, target) || strings.Contains(msg, "leak") || strings.Contains(msg, testToken) {
		t.Errorf("error %q should name %s, without the query or the token", msg, target)
	}
	err = c.Stream(context.Background(), testMailbox, "sub-1", time.Minute, func() {}, func() {})
	if !errors.As(err, &re) || re.Code != "Redirect" {
		t.Errorf("Stream() = %v, want a Redirect error", err)
	}
	if n := caught.Load(); n != 0 {
		t.Errorf("the catching server got %d requests, want none", n)
	}
	if hc.CheckRedirect != nil || hc.Timeout != 0 {
		t.Error("the caller's http.Client was changed")
	}
}

// TestPlainHTTPNeedsOptIn: an http:// server is refused (nothing is sent)
// unless AllowHTTP is set, which logs one warning.
func TestPlainHTTPNeedsOptIn(t *testing.T) {
	f := newFake(t, serveFile(t, "getfolder.xml"))
	url := f.srv.URL + "/EWS/Exchange.asmx"
	tok := func(context.Context) (string, error) { return testToken, nil }
	c := NewClient(Options{URL: url, Token: tok, Logger: slog.New(slog.DiscardHandler)})
	_, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
	if !errors.Is(err, source.ErrPermanent) || !strings.Contains(err.Error(), "insecure_http: true") {
		t.Errorf("GetFolder() over http = %v, want a permanent refusal naming insecure_http", err)
	}
	if err := c.Stream(context.Background(), testMailbox, "s", time.Minute, func() {}, func() {}); !errors.Is(err, source.ErrPermanent) {
		t.Errorf("Stream() over http = %v, want the refusal", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests reached the http server, want none", n)
	}
	remote := NewClient(Options{URL: "http://mail.example.com/EWS/Exchange.asmx", AllowHTTP: true, Token: tok, Logger: slog.New(slog.DiscardHandler)})
	if _, err := remote.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}); err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Errorf("GetFolder() over http to a remote host = %v, want a refusal even with AllowHTTP", err)
	}
	var logs logtest.Buffer
	c = NewClient(Options{URL: url, AllowHTTP: true, Token: tok, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		if _, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), `level=WARN msg="insecure_http is set`); n != 1 {
		t.Errorf("%d insecure_http warnings, want 1:\n%s", n, logs.String())
	}
}

// TestBackoffClamped: whatever wait the server asks for, Backoff is between
// 1 s and 15 min; negative or unreadable values are no hint at all.
func TestBackoffClamped(t *testing.T) {
	for ms, want := range map[string]time.Duration{
		"9000000000000": 15 * time.Minute, "10000000000000": 15 * time.Minute, "99999999999999999999999": 15 * time.Minute,
		"0": 0, "-5": 0, "1e20": 0, "3": time.Second, "2500": 2500 * time.Millisecond,
	} {
		body := responseOf("GetFolder", `<m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>busy</m:MessageText>`+
			`<m:ResponseCode>ErrorServerBusy</m:ResponseCode><m:MessageXml><t:Value Name="BackOffMilliseconds">`+ms+`</t:Value></m:MessageXml></m:GetFolderResponseMessage>`)
		f := newFake(t, func(w http.ResponseWriter, _ recorded) { writeXML(w, 200, body) })
		_, err := f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
		if got, ok := Backoff(err); got != want || ok != (want > 0) || !errors.Is(err, ErrServerBusy) {
			t.Errorf("BackOffMilliseconds %s: Backoff = %v, %v (err %v); want %v", ms, got, ok, err, want)
		}
	}
	for ra, want := range map[string]time.Duration{"99999999999": 15 * time.Minute, "999999999999999999999": 15 * time.Minute, "-1": 0, "0": 0, "7": 7 * time.Second} {
		f := newFake(t, func(w http.ResponseWriter, _ recorded) { w.Header().Set("Retry-After", ra); w.WriteHeader(503) })
		_, err := f.client(Options{}).GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"})
		if got, _ := Backoff(err); got != want {
			t.Errorf("Retry-After %s: Backoff = %v, want %v", ra, got, want)
		}
	}
}

// TestSyncNeverReachesLastPage: a server whose SyncFolderItems never says
// IncludesLastItemInRange=true ends the poll with an error that says so,
// after two pages when its SyncState does not move and after maxSyncPages
// when it does.
func TestSyncNeverReachesLastPage(t *testing.T) {
	defer func(n int) { maxSyncPages = n }(maxSyncPages)
	maxSyncPages = 50
	for _, tc := range []struct {
		name   string
		moving bool
		want   string
		pages  int
	}{
		{"same state", false, "same SyncState", 2},
		{"new state every page", true, "50 pages in one poll", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var syncs atomic.Int32
			f := newFake(t, func(w http.ResponseWriter, r recorded) {
				if r.op == "GetFolder" {
					serveFile(t, "getfolder.xml")(w, r)
					return
				}
				n := syncs.Add(1)
				st := "stuck"
				if tc.moving {
					st = fmt.Sprintf("state-%d", n)
				}
				writeXML(w, 200, responseOf("SyncFolderItems", okMessage("SyncFolderItems",
					`<m:SyncState>`+st+`</m:SyncState><m:IncludesLastItemInRange>false</m:IncludesLastItemInRange><m:Changes/>`)))
			})
			s := openSource(t, f, source.Mailbox{StartFrom: "now"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := s.Poll(ctx, nil, func(context.Context, source.Batch) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) || ctx.Err() != nil {
				t.Fatalf("Poll() = %v, want an error saying %q", err, tc.want)
			}
			if n := int(syncs.Load()); n != tc.pages {
				t.Errorf("%d SyncFolderItems requests, want %d", n, tc.pages)
			}
		})
	}
}

// Test401ReportedOncePerToken: ten requests in flight that Exchange refuses
// with the same token report it once, and the next requests carry a new
// one.
func Test401ReportedOncePerToken(t *testing.T) {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r recorded) {
		if r.header.Get("Authorization") == "Bearer tok-1" {
			mu.Lock()
			if arrived++; arrived == 10 {
				close(all)
			}
			mu.Unlock()
			<-all // all ten are in flight with the same token
			w.Header().Set("X-Ms-Diagnostics", `2000001;reason="The token has expired.";error_category="invalid_token"`)
			w.WriteHeader(401)
			return
		}
		serveFile(t, "getfolder.xml")(w, r)
	})
	var tokMu sync.Mutex
	current, issued := "tok-1", 1
	var reported []string
	c := f.client(Options{MaxInFlight: 10,
		Token: func(context.Context) (string, error) { tokMu.Lock(); defer tokMu.Unlock(); return current, nil },
		OnUnauthorized: func(tok string) {
			tokMu.Lock()
			defer tokMu.Unlock()
			reported = append(reported, tok)
			if tok == current {
				issued++
				current = fmt.Sprintf("tok-%d", issued)
			}
		}})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("GetFolder() = %v, want ErrUnauthorized", err)
			}
		})
	}
	wg.Wait()
	for range 5 {
		if _, err := c.GetFolder(context.Background(), testMailbox, FolderID{Distinguished: "inbox"}); err != nil {
			t.Errorf("GetFolder() after the renewal = %v", err)
		}
	}
	if len(reported) != 1 || reported[0] != "tok-1" || issued != 2 {
		t.Errorf("OnUnauthorized got %q, %d tokens issued; want tok-1 once and one renewal", reported, issued)
	}
}

// TestStreamOutlivesRequestTimeout: a healthy streaming connection, kept
// alive by the server's status messages, lives past the HTTPClient's
// Timeout (set short here) and still delivers its notification.
func TestStreamOutlivesRequestTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFake(t, func(w http.ResponseWriter, r recorded) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		send := func(inner string) {
			io.WriteString(w, envelopeOf(`<m:GetStreamingEventsResponse XMLNS><m:ResponseMessages>` + okMessage("GetStreamingEvents", inner) +
				`</m:ResponseMessages></m:GetStreamingEventsResponse>`)[len(`<?xml version="1.0" encoding="utf-8"?>`):])
			w.(http.Flusher).Flush()
		}
		send(`<m:ConnectionStatus>OK</m:ConnectionStatus>`)
		for end := time.Now().Add(3 * timeout); time.Now().Before(end); {
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(timeout / 6): // the server's keep-alive period
			}
			send(`<m:ConnectionStatus>OK</m:ConnectionStatus>`)
		}
		send(`<m:Notifications><m:Notification><t:SubscriptionId>sub-1</t:SubscriptionId><t:NewMailEvent/></m:Notification></m:Notifications>`)
		send(`<m:ConnectionStatus>Closed</m:ConnectionStatus>`)
	})
	c := f.client(Options{HTTPClient: &http.Client{Timeout: timeout}, StreamIdleTimeout: timeout})
	start := time.Now()
	var ups, notes atomic.Int32
	err := c.Stream(context.Background(), testMailbox, "sub-1", time.Minute, func() { ups.Add(1) }, func() { notes.Add(1) })
	if err != nil || ups.Load() != 1 || notes.Load() != 1 {
		t.Fatalf("Stream() = %v after %d ups, %d notifications; want nil after one of each", err, ups.Load(), notes.Load())
	}
	if d := time.Since(start); d < 3*timeout {
		t.Errorf("Stream() ended after %v, before the server closed it", d)
	}
}

// TestStreamSilentEnds: a streaming connection on which nothing arrives
// after the server accepted it is ended by its inactivity deadline.
func TestStreamSilentEnds(t *testing.T) {
	closed := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r recorded) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, envelopeOf(`<m:GetStreamingEventsResponse XMLNS><m:ResponseMessages>`+
			okMessage("GetStreamingEvents", `<m:ConnectionStatus>OK</m:ConnectionStatus>`)+`</m:ResponseMessages></m:GetStreamingEventsResponse>`))
		w.(http.Flusher).Flush()
		<-r.ctx.Done() // then silence, until the client hangs up
		close(closed)
	})
	c := f.client(Options{HTTPClient: &http.Client{}, StreamIdleTimeout: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		done <- c.Stream(context.Background(), testMailbox, "sub-1", time.Minute, func() {}, func() {})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStreamSilent) {
			t.Errorf("Stream() = %v, want ErrStreamSilent", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent streaming connection still open after 5 s with a 200 ms inactivity deadline")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("the server's request was not ended")
	}
}

// TestStreamClosedAtOnceNoTightLoop: a server that ends every streaming
// connection as soon as it is up, or forgets every subscription, gets
// about one connection per poll interval, not a connection and a sync in a
// tight loop.
func TestStreamClosedAtOnceNoTightLoop(t *testing.T) {
	for _, forget := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed at once", true: "subscription always gone"}[forget], func(t *testing.T) {
			var streams atomic.Int32
			f := newFake(t, func(w http.ResponseWriter, r recorded) {
				switch r.op {
				case "GetFolder":
					serveFile(t, "getfolder.xml")(w, r)
				case "Subscribe":
					writeXML(w, 200, responseOf("Subscribe", okMessage("Subscribe", "<m:SubscriptionId>sub-1</m:SubscriptionId>")))
				case "GetStreamingEvents":
					streams.Add(1)
					msg := okMessage("GetStreamingEvents", `<m:ConnectionStatus>OK</m:ConnectionStatus>`)
					if forget {
						msg = errMessage("GetStreamingEvents", "ErrorSubscriptionNotFound")
					}
					writeXML(w, 200, envelopeOf(`<m:GetStreamingEventsResponse XMLNS><m:ResponseMessages>`+msg+`</m:ResponseMessages></m:GetStreamingEventsResponse>`))
				}
			})
			s := openSource(t, f, source.Mailbox{})
			const interval = 100 * time.Millisecond
			waits := 0
			for start := time.Now(); time.Since(start) < time.Second; waits++ {
				if err := s.Wait(context.Background(), interval); err != nil {
					t.Fatal(err)
				}
			}
			if n := streams.Load(); n > 20 || n < 2 {
				t.Errorf("%d streaming connections in 1 s with a 100 ms poll interval (%d waits), want 2 to 20", n, waits)
			} else {
				t.Logf("%d streaming connections, %d waits in 1 s", n, waits)
			}
		})
	}
}

// TestMIMEDecodeCost: a legitimate GetItem response that is almost all
// base64 MIME costs a small multiple of its size to decode (the decoder's
// buffer, the text, the decoded message), not the tree's 30 times.
func TestMIMEDecodeCost(t *testing.T) {
	raw := message("big", 4<<20)
	body := []byte(responseOf("GetItem", okMessage("GetItem", `<m:Items><t:Message><t:MimeContent CharacterSet="UTF-8">`+
		base64.StdEncoding.EncodeToString(raw)+`</t:MimeContent><t:ItemId Id="big"/><t:Size>1</t:Size></t:Message></m:Items>`)))
	f := newFake(t, func(w http.ResponseWriter, _ recorded) { w.Header().Set("Content-Type", "text/xml"); w.Write(body) })
	c := f.client(Options{MaxResponseBytes: 8 << 20})
	var items []MIMEItem
	var err error
	n := memtest.Allocated(func() { items, err = c.GetItemsMIME(context.Background(), testMailbox, []ItemID{{ID: "big"}}) })
	if err != nil || len(items) != 1 || !bytes.Equal(items[0].MIME, raw) {
		t.Fatalf("GetItemsMIME() = %v", err)
	}
	if ratio := float64(n) / float64(len(body)); ratio > 10 {
		t.Errorf("decoding a %d MiB response allocated %.1f times its size, want at most 10 (a tree would cost 30)", len(body)>>20, ratio)
	} else {
		t.Logf("a %.1f MiB GetItem response cost %.1f MiB (%.1f×) to decode", float64(len(body))/(1<<20), float64(n)/(1<<20), ratio)
	}
}
