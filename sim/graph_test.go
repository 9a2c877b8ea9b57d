package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// graphEnv is a simulator and a client with a Graph token.
type graphEnv struct {
	t      *testing.T
	s      *Sim
	c      *http.Client
	token  string
	prefer string
}

func newGraphEnv(t *testing.T) *graphEnv {
	t.Helper()
	seed, err := LoadSeed("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e := &graphEnv{t: t, s: s, c: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}}}
	e.token = e.getToken("22222222-2222-2222-2222-222222222222", "demo-secret", "https://graph.microsoft.com/.default")
	return e
}

func (e *graphEnv) getToken(client, secret, scope string) string {
	e.t.Helper()
	resp, err := e.c.PostForm(e.s.Endpoints().Authority+"/contoso.test/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}, "scope": {scope}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tr)
	if tr.AccessToken == "" {
		e.t.Fatalf("no token for %s", client)
	}
	return tr.AccessToken
}

// do sends a request (path relative to /v1.0 or absolute) and decodes JSON into out.
func (e *graphEnv) do(method, path string, body any, out any) (int, http.Header) {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = e.s.Endpoints().Graph + path
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if e.prefer != "" {
		req.Header.Set("Prefer", e.prefer)
	}
	resp, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if p, ok := out.(*[]byte); ok {
			*p = b
		} else if len(b) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
	}
	return resp.StatusCode, resp.Header
}

type gerrBody struct {
	Error struct {
		Code, Message string
	}
}

type deltaPage struct {
	Value     []map[string]any `json:"value"`
	NextLink  string           `json:"@odata.nextLink"`
	DeltaLink string           `json:"@odata.deltaLink"`
}

// deltaAll follows nextLinks to the deltaLink.
func (e *graphEnv) deltaAll(link string) ([]map[string]any, string, int) {
	e.t.Helper()
	var all []map[string]any
	pages := 0
	for {
		var p deltaPage
		if st, _ := e.do("GET", link, nil, &p); st != 200 {
			e.t.Fatalf("delta %s: %d", link, st)
		}
		pages++
		all = append(all, p.Value...)
		if p.DeltaLink != "" {
			return all, p.DeltaLink, pages
		}
		link = p.NextLink
	}
}

const support = "/users/Support@Contoso.test"

func TestGraphFolders(t *testing.T) {
	e := newGraphEnv(t)
	e.s.Store().CreateFolder("support@contoso.test", "Inbox/Done")
	var f map[string]any
	if st, _ := e.do("GET", support+"/mailFolders/INBOX", nil, &f); st != 200 || f["displayName"] != "Inbox" || f["totalItemCount"] != 5.0 || f["childFolderCount"] != 1.0 {
		t.Fatalf("inbox: %d %v", st, f)
	}
	var sel map[string]any
	e.do("GET", support+"/mailFolders/inbox?$select=displayName", nil, &sel)
	if _, ok := sel["totalItemCount"]; ok || sel["id"] != f["id"] {
		t.Fatalf("$select: %v", sel)
	}
	var kids struct{ Value []map[string]any }
	e.do("GET", support+"/mailFolders/"+f["id"].(string)+"/childFolders", nil, &kids)
	if len(kids.Value) != 1 || kids.Value[0]["displayName"] != "Done" || kids.Value[0]["parentFolderId"] != f["id"] {
		t.Fatalf("childFolders: %v", kids)
	}
	var top struct {
		Value    []map[string]any
		NextLink string `json:"@odata.nextLink"`
	}
	e.do("GET", support+"/mailFolders?$top=1", nil, &top)
	if len(top.Value) != 1 || top.NextLink == "" {
		t.Fatalf("paging: %v", top)
	}
	var eb gerrBody
	if st, _ := e.do("GET", support+"/mailFolders/AAMkNoSuchFolderAtAll", nil, &eb); st != 404 || eb.Error.Code != "ErrorItemNotFound" {
		t.Fatalf("unknown folder: %d %v", st, eb)
	}
	if st, _ := e.do("GET", "/users/nobody@contoso.test/mailFolders/inbox", nil, &eb); st != 404 || eb.Error.Code != "ErrorInvalidUser" {
		t.Fatalf("unknown user: %d %v", st, eb)
	}
}

func TestGraphDeltaAndActions(t *testing.T) {
	e := newGraphEnv(t)
	e.prefer = `odata.maxpagesize=2, IdType="ImmutableId"`
	var p deltaPage
	_, h := e.do("GET", support+"/mailFolders/inbox/messages/delta?$select=isRead,subject", nil, &p)
	if !strings.Contains(h.Get("Preference-Applied"), "odata.maxpagesize=2") || len(p.Value) != 2 || p.NextLink == "" {
		t.Fatalf("first page: %v %v", h, p)
	}
	if _, ok := p.Value[0]["receivedDateTime"]; ok || p.Value[0]["subject"] == nil || p.Value[0]["@odata.type"] != "#microsoft.graph.message" {
		t.Fatalf("$select: %v", p.Value[0])
	}
	e.prefer = "" // the links carry the state
	items, link, pages := e.deltaAll(p.NextLink)
	items = append(p.Value, items...)
	if len(items) != 5 || pages != 2 {
		t.Fatalf("initial round: %d items, %d more pages", len(items), pages)
	}
	e.prefer = `IdType="ImmutableId"`
	ids := []string{}
	for _, it := range items {
		ids = append(ids, it["id"].(string))
	}
	// Read one over PATCH, move one, delete one, deliver one.
	var m map[string]any
	if st, _ := e.do("PATCH", support+"/messages/"+url.PathEscape(ids[0]), map[string]any{"isRead": true}, &m); st != 200 || m["isRead"] != true {
		t.Fatalf("patch: %d %v", st, m)
	}
	if st, _ := e.do("POST", support+"/messages/"+ids[1]+"/move", map[string]any{"destinationId": "archive"}, &m); st != 201 || m["id"] != ids[1] {
		t.Fatalf("move: %d %v", st, m)
	}
	if st, _ := e.do("DELETE", support+"/messages/"+ids[2], nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	e.s.Store().Deliver("support@contoso.test", "INBOX", Generate("support@contoso.test", 9), time.Time{})
	items, link2, _ := e.deltaAll(link)
	var created, updated, removed int
	for _, it := range items {
		switch {
		case it["@removed"] != nil:
			removed++
		case it["id"] == ids[0]:
			updated++
		default:
			created++
		}
	}
	if created != 1 || updated != 1 || removed != 2 {
		t.Fatalf("incremental: %d created, %d updated, %d removed: %v", created, updated, removed, items)
	}
	del, _ := e.s.Store().Messages("support@contoso.test", "Deleted Items")
	if len(del) != 1 {
		t.Fatalf("Deleted Items holds %d", len(del))
	}
	// changeType=created after a new delivery and a read.
	var p2 deltaPage
	e.do("GET", support+"/mailFolders/inbox/messages/delta?changeType=created", nil, &p2)
	items, link3, _ := e.deltaAll(p2.DeltaLink)
	if len(items) != 0 {
		t.Fatalf("nothing changed: %v", items)
	}
	e.s.Store().Deliver("support@contoso.test", "INBOX", Generate("support@contoso.test", 10), time.Time{})
	e.do("PATCH", support+"/messages/"+ids[3], map[string]any{"isRead": true}, nil)
	if items, _, _ = e.deltaAll(link3); len(items) != 1 || items[0]["id"] == ids[3] {
		t.Fatalf("changeType=created: %v", items)
	}
	// Expired tokens.
	e.s.Graph().ExpireDelta("support@contoso.test")
	var eb gerrBody
	if st, _ := e.do("GET", link2, nil, &eb); st != 410 || !strings.EqualFold(eb.Error.Code, "syncStateNotFound") {
		t.Fatalf("expired: %d %v", st, eb)
	}
	// $value is the stored MIME, as IMAP and EWS serve it.
	var raw []byte
	_, h = e.do("GET", support+"/messages/"+ids[0]+"/$value", nil, &raw)
	inbox, _ := e.s.Store().Messages("support@contoso.test", "INBOX")
	if !bytes.Equal(raw, inbox[0].Raw) || h.Get("Content-Type") != "text/plain" || !inbox[0].Seen() {
		t.Fatalf("$value: %q %s", raw, h)
	}
}

func TestGraphPermissions(t *testing.T) {
	e := newGraphEnv(t)
	var eb gerrBody
	e.token = e.getToken("22222222-2222-2222-2222-222222222222", "demo-secret", "https://outlook.office365.com/.default")
	st, h := e.do("GET", support+"/mailFolders/inbox", nil, &eb)
	if st != 401 || eb.Error.Code != "InvalidAuthenticationToken" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("Exchange token: %d %v", st, eb)
	}
	e.token = e.getToken("33333333-3333-3333-3333-333333333333", "other-secret", "https://graph.microsoft.com/.default")
	if st, _ := e.do("GET", support+"/mailFolders/inbox", nil, &eb); st != 403 || eb.Error.Code != "ErrorAccessDenied" {
		t.Fatalf("no roles: %d %v", st, eb)
	}
	e.token = ""
	if st, _ := e.do("GET", support+"/mailFolders/inbox", nil, &eb); st != 401 {
		t.Fatalf("no token: %d", st)
	}
}

func TestGraphBatchAndFaults(t *testing.T) {
	e := newGraphEnv(t)
	reqs := []map[string]any{}
	for i := range 21 {
		reqs = append(reqs, map[string]any{"id": string(rune('a' + i)), "method": "GET", "url": support + "/mailFolders/inbox"})
	}
	var eb gerrBody
	if st, _ := e.do("POST", "/$batch", map[string]any{"requests": reqs}, &eb); st != 400 {
		t.Fatalf("21 requests: %d", st)
	}
	e.s.Graph().Throttle("support@contoso.test", 1, 1500*time.Millisecond)
	var br struct {
		Responses []struct {
			ID      string
			Status  int
			Headers map[string]string
		}
	}
	batch := []map[string]any{
		{"id": "1", "method": "GET", "url": support + "/mailFolders/inbox"},
		{"id": "2", "method": "GET", "url": support + "/mailFolders/inbox", "dependsOn": []string{"1"}},
		{"id": "3", "method": "GET", "url": support + "/mailFolders/inbox"},
	}
	if st, _ := e.do("POST", "/$batch", map[string]any{"requests": batch}, &br); st != 200 || len(br.Responses) != 3 {
		t.Fatalf("batch: %d %v", st, br)
	}
	got := map[string]int{}
	for _, r := range br.Responses {
		got[r.ID] = r.Status
		if r.ID == "1" && r.Headers["Retry-After"] != "2" {
			t.Fatalf("inner 429 headers: %v", r.Headers)
		}
	}
	if got["1"] != 429 || got["2"] != 424 || got["3"] != 200 {
		t.Fatalf("batch statuses: %v", got)
	}
	e.s.Graph().Unavailable("support@contoso.test", 1, 0)
	if st, _ := e.do("GET", support+"/mailFolders/inbox", nil, nil); st != 503 {
		t.Fatalf("unavailable: %d", st)
	}
	e.s.Graph().Unauthorized(1)
	if st, _ := e.do("GET", support+"/mailFolders/inbox", nil, nil); st != 401 {
		t.Fatalf("unauthorized: %d", st)
	}
	e.do("GET", support+"/mailFolders/inbox", nil, nil)
	ev := e.s.Graph().Throttled("support@contoso.test")
	if len(ev) != 2 || ev[0].NextArrival.IsZero() || ev[0].RetryAfter != 2*time.Second {
		t.Fatalf("throttle events: %+v", ev)
	}
	if n := e.s.Graph().Count("support@contoso.test", "batch"); n != 1 {
		t.Fatalf("batch count %d", n)
	}
	if e.s.Graph().MaxInFlight("support@contoso.test") < 1 {
		t.Fatal("no in-flight record")
	}
}

func TestGraphReadOnlyAndScope(t *testing.T) {
	e := newGraphEnv(t)
	e.token = e.getToken("44444444-4444-4444-4444-444444444444", "reader-secret", "https://graph.microsoft.com/.default")
	var p deltaPage
	if st, _ := e.do("GET", support+"/mailFolders/inbox/messages/delta", nil, &p); st != 200 || len(p.Value) != 5 {
		t.Fatalf("Mail.Read delta: %d %d", st, len(p.Value))
	}
	var eb gerrBody
	if st, _ := e.do("PATCH", support+"/messages/"+p.Value[0]["id"].(string), map[string]any{"isRead": true}, &eb); st != 403 || eb.Error.Code != "ErrorAccessDenied" {
		t.Fatalf("Mail.Read PATCH: %d %v", st, eb)
	}
	if st, _ := e.do("GET", "/users/billing@contoso.test/mailFolders/inbox", nil, &eb); st != 403 || eb.Error.Message != "Access is denied. Check credentials and try again." {
		t.Fatalf("out of scope: %d %v", st, eb)
	}
}

func TestGraphConcurrencyLimit(t *testing.T) {
	e := newGraphEnv(t)
	release := make(chan struct{})
	e.s.Graph().admitted = func() { <-release }
	statuses := make(chan int, 5)
	for range 5 {
		go func() {
			st, _ := e.do("GET", support+"/mailFolders/inbox", nil, nil)
			statuses <- st
		}()
	}
	// The fifth in flight is refused at once; the four others wait for release.
	select {
	case st := <-statuses:
		if st != 429 {
			t.Fatalf("fifth in flight: %d", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request refused with four in flight")
	}
	close(release)
	for range 4 {
		if st := <-statuses; st != 200 {
			t.Fatalf("admitted request: %d", st)
		}
	}
	if n := e.s.Graph().MaxInFlight("support@contoso.test"); n != 5 {
		t.Fatalf("MaxInFlight %d, want 5", n)
	}
	if ev := e.s.Graph().Throttled("support@contoso.test"); len(ev) != 1 || ev[0].Status != 429 || ev[0].RetryAfter != time.Second {
		t.Fatalf("throttle events: %+v", ev)
	}
}

func TestGraphControlFaults(t *testing.T) {
	e := newGraphEnv(t)
	resp, err := e.c.Post(e.s.Endpoints().Control+"/faults/graph?mailbox=support@contoso.test&throttle=1&retry_after_ms=100", "text/plain", nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("control: %v %v", resp, err)
	}
	resp.Body.Close()
	var eb gerrBody
	st, h := e.do("GET", support+"/mailFolders/inbox", nil, &eb)
	if st != 429 || h.Get("Retry-After") != "1" || eb.Error.Code != "ApplicationThrottled" || h.Get("request-id") == "" {
		t.Fatalf("throttled: %d %v %v", st, h, eb)
	}
}

// TestGraphDeltaMoveBack: a message moved out and back in with
// ImmutableId is not reported removed after its created entry.
func TestGraphDeltaMoveBack(t *testing.T) {
	e := newGraphEnv(t)
	e.prefer = `IdType="ImmutableId"`
	items, link, _ := e.deltaAll(support + "/mailFolders/inbox/messages/delta")
	id := items[0]["id"].(string)
	e.do("POST", support+"/messages/"+id+"/move", map[string]any{"destinationId": "archive"}, nil)
	e.do("POST", support+"/messages/"+id+"/move", map[string]any{"destinationId": "inbox"}, nil)
	items, _, _ = e.deltaAll(link)
	if len(items) != 1 || items[0]["id"] != id || items[0]["@removed"] != nil {
		t.Fatalf("after a move out and back: %v", items)
	}
}
