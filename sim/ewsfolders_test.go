package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
)

// The EWS folder hierarchy over real HTTP: FindFolder's traversals,
// parents and paging, GetFolder's counts, and CreateFolder seen over
// IMAP and Graph.

const folderBox = "support@contoso.test"

// ewsFolderEnv is a simulator whose support@ mailbox holds
// Inbox, Inbox/Processed, Inbox/Support, Inbox/Support/Processed and a
// top-level Processed, with an app that may use EWS, IMAP and Graph.
type ewsFolderEnv struct {
	t   *testing.T
	s   *Sim
	tok string
}

func newEWSFolderEnv(t *testing.T) *ewsFolderEnv {
	t.Helper()
	seed := &Seed{
		Tenants: []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []App{{Tenant: tenant, ClientID: app1, Secret: "secret-1", Roles: []string{"full_access_as_app", "IMAP.AccessAsApp"},
			GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}}},
		Mailboxes: []MailboxSeed{{Address: folderBox, Generate: 2,
			Folders: []string{"Processed", "Inbox/Processed", "Inbox/Support", "Inbox/Support/Processed"}}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	_, b := token(t, s, tenant, app1, "secret-1", scope)
	tok, _ := b["access_token"].(string)
	if tok == "" {
		t.Fatalf("no token: %v", b)
	}
	return &ewsFolderEnv{t: t, s: s, tok: tok}
}

// call posts one EWS operation (the body's XML, prefix m: for messages and
// t: for types) impersonating folderBox, and returns its response messages.
func (e *ewsFolderEnv) call(body string) []*xnode {
	e.t.Helper()
	env := `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">` +
		`<soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>` +
		`<t:SmtpAddress>` + folderBox + `</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	req, _ := http.NewRequest("POST", e.s.Endpoints().EWS, strings.NewReader(env))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+e.tok)
	resp, err := client(e.s).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := parseXML(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("HTTP %d, %v for\n%s", resp.StatusCode, err, body)
	}
	b := doc.find("Envelope", "Body")
	if b == nil || len(b.kids) != 1 || b.kids[0].child("ResponseMessages") == nil {
		e.t.Fatalf("no response messages for\n%s", body)
	}
	return b.kids[0].child("ResponseMessages").kids
}

// code is a response message's ResponseCode.
func code(msg *xnode) string { return strings.TrimSpace(msg.child("ResponseCode").text) }

func codes(msgs []*xnode) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, code(m))
	}
	return out
}

// efolderView is a t:Folder of a response.
type efolderView struct {
	id, parent, name    string
	children, total, ur int
}

func foldersOf(t *testing.T, msg *xnode, path ...string) []efolderView {
	t.Helper()
	if code(msg) != "NoError" {
		t.Fatalf("%s: %s %s", msg.name, code(msg), msg.child("MessageText").text)
	}
	var out []efolderView
	for _, f := range msg.find(path...).kids {
		text := func(name string) string {
			if k := f.child(name); k != nil {
				return k.text
			}
			return ""
		}
		n := func(name string) int { v, _ := strconv.Atoi(text(name)); return v }
		v := efolderView{id: f.child("FolderId").attrs["Id"], name: text("DisplayName"),
			children: n("ChildFolderCount"), total: n("TotalCount"), ur: n("UnreadCount")}
		if p := f.child("ParentFolderId"); p != nil {
			v.parent = p.attrs["Id"]
		}
		out = append(out, v)
	}
	return out
}

// findFolder runs FindFolder with the traversal, parent id element, and
// extra elements (a paging view, a restriction) placed before
// ParentFolderIds as the schema orders them.
func (e *ewsFolderEnv) findFolder(traversal, parent, extra string) []*xnode {
	e.t.Helper()
	return e.call(`<m:FindFolder Traversal="` + traversal + `"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>` + extra +
		`<m:ParentFolderIds>` + parent + `</m:ParentFolderIds></m:FindFolder>`)
}

func distinguished(id string) string { return `<t:DistinguishedFolderId Id="` + id + `"/>` }
func folderID(id string) string      { return `<t:FolderId Id="` + id + `"/>` }

func names(fs []efolderView) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.name)
	}
	return out
}

func (e *ewsFolderEnv) storeID(name string) string {
	e.t.Helper()
	fi, err := e.s.Store().Folder(folderBox, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return fi.ID
}

// TestEWSFolderHierarchy: folders are shown as the tree their store paths
// make, with the real parent, the last path segment as DisplayName and the
// real child count; two folders named Processed under different parents are
// distinct; Shallow lists children and Deep the subtree, from a
// DistinguishedFolderId (with or without a Mailbox) or a FolderId; an
// unknown parent fails its own response message only.
func TestEWSFolderHierarchy(t *testing.T) {
	e := newEWSFolderEnv(t)
	inboxID, supportID := e.storeID("INBOX"), e.storeID("Inbox/Support")
	topProcessed, inboxProcessed, supportProcessed := e.storeID("Processed"), e.storeID("Inbox/Processed"), e.storeID("Inbox/Support/Processed")

	deep := foldersOf(t, e.findFolder("Deep", distinguished("msgfolderroot"), "")[0], "RootFolder", "Folders")
	want := []efolderView{
		{id: inboxID, parent: "msgfolderroot", name: "Inbox", children: 2, total: 2, ur: 2},
		{id: inboxProcessed, parent: inboxID, name: "Processed"},
		{id: supportID, parent: inboxID, name: "Support", children: 1},
		{id: supportProcessed, parent: supportID, name: "Processed"},
		{id: topProcessed, parent: "msgfolderroot", name: "Processed"},
	}
	if !slices.Equal(deep, want) {
		t.Fatalf("Deep from msgfolderroot:\n got %+v\nwant %+v", deep, want)
	}
	if ids := []string{topProcessed, inboxProcessed, supportProcessed}; len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
		t.Fatalf("three folders named Processed share ids: %v", ids)
	}

	for _, tc := range []struct {
		name, traversal, parent string
		want                    []string
	}{
		{"Shallow from inbox", "Shallow", distinguished("inbox"), []string{"Processed", "Support"}},
		{"Shallow from inbox with its Mailbox", "Shallow",
			`<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>` + folderBox + `</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>`,
			[]string{"Processed", "Support"}},
		{"Deep from inbox", "Deep", distinguished("inbox"), []string{"Processed", "Support", "Processed"}},
		{"Shallow from Support's FolderId", "Shallow", folderID(supportID), []string{"Processed"}},
		{"Shallow from msgfolderroot", "Shallow", distinguished("msgfolderroot"), []string{"Inbox", "Processed"}},
		{"Shallow from msgfolderroot's FolderId", "Shallow", folderID("msgfolderroot"), []string{"Inbox", "Processed"}},
		{"Shallow from root", "Shallow", distinguished("root"), []string{"Top of Information Store"}},
		{"Deep from root", "Deep", distinguished("root"), []string{"Top of Information Store", "Inbox", "Processed", "Support", "Processed", "Processed"}},
		{"Shallow from a leaf", "Shallow", folderID(supportProcessed), nil},
	} {
		msgs := e.findFolder(tc.traversal, tc.parent, "")
		got := foldersOf(t, msgs[0], "RootFolder", "Folders")
		root := msgs[0].child("RootFolder")
		if !slices.Equal(names(got), tc.want) || root.attrs["TotalItemsInView"] != strconv.Itoa(len(tc.want)) || root.attrs["IncludesLastItemInRange"] != "true" {
			t.Errorf("%s: %v (%v), want %v", tc.name, names(got), root.attrs, tc.want)
		}
	}

	top := foldersOf(t, e.findFolder("Deep", distinguished("root"), "")[0], "RootFolder", "Folders")[0]
	if top.id != "msgfolderroot" || top.parent != "root" || top.children != 2 {
		t.Errorf("msgfolderroot in a Deep FindFolder from root: %+v", top)
	}

	// GetFolder reports the real child counts of the roots and folders.
	msgs := e.call(`<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>` +
		distinguished("msgfolderroot") + distinguished("root") + distinguished("inbox") + folderID(supportID) + folderID("AAMkAGone") + `</m:FolderIds></m:GetFolder>`)
	if len(msgs) != 5 || code(msgs[4]) != "ErrorFolderNotFound" {
		t.Fatalf("GetFolder: %d messages, last %q", len(msgs), code(msgs[len(msgs)-1]))
	}
	var counts []string
	for _, m := range msgs[:4] {
		f := foldersOf(t, m, "Folders")[0]
		counts = append(counts, fmt.Sprintf("%s:%d", f.name, f.children))
	}
	if got := strings.Join(counts, " "); got != "Top of Information Store:2 Root:1 Inbox:2 Support:1" {
		t.Errorf("GetFolder child counts: %s", got)
	}

	// Several parents: one response message each; an unknown one fails alone.
	msgs = e.findFolder("Shallow", distinguished("inbox")+folderID("AAMkAGnosuchfolder")+folderID(supportID), "")
	if len(msgs) != 3 || code(msgs[0]) != "NoError" || code(msgs[1]) != "ErrorFolderNotFound" || msgs[1].attrs["ResponseClass"] != "Error" || code(msgs[2]) != "NoError" {
		t.Fatalf("FindFolder with an unknown parent among three: %v", codes(msgs))
	}
	if got := names(foldersOf(t, msgs[2], "RootFolder", "Folders")); !slices.Equal(got, []string{"Processed"}) {
		t.Errorf("third parent's children: %v", got)
	}

	// A restriction on DisplayName (compared without case, as Exchange does).
	restr := `<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURIOrConstant><t:Constant Value="processed"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>`
	msgs = e.findFolder("Deep", distinguished("msgfolderroot"), restr)
	got := foldersOf(t, msgs[0], "RootFolder", "Folders")
	if len(got) != 3 || msgs[0].child("RootFolder").attrs["TotalItemsInView"] != "3" || got[0].parent != inboxID || got[1].parent != supportID || got[2].parent != "msgfolderroot" {
		t.Errorf("Deep FindFolder for DisplayName = processed: %+v", got)
	}
}

// TestEWSFindFolderPaging pages a Deep FindFolder two folders at a time
// with IndexedPageFolderView: each page starts where IndexedPagingOffset
// said, TotalItemsInView is the whole view, IncludesLastItemInRange is set
// on the last page only, and the pages together are the unpaged answer.
func TestEWSFindFolderPaging(t *testing.T) {
	e := newEWSFolderEnv(t)
	all := foldersOf(t, e.findFolder("Deep", distinguished("msgfolderroot"), "")[0], "RootFolder", "Folders")
	if len(all) != 5 {
		t.Fatalf("%d folders, want 5", len(all))
	}
	var paged []efolderView
	offset, pages := 0, 0
	for {
		view := fmt.Sprintf(`<m:IndexedPageFolderView MaxEntriesReturned="2" Offset="%d" BasePoint="Beginning"/>`, offset)
		msg := e.findFolder("Deep", distinguished("msgfolderroot"), view)[0]
		page := foldersOf(t, msg, "RootFolder", "Folders")
		root := msg.child("RootFolder")
		next, _ := strconv.Atoi(root.attrs["IndexedPagingOffset"])
		last := root.attrs["IncludesLastItemInRange"] == "true"
		if root.attrs["TotalItemsInView"] != "5" || next != offset+len(page) || len(page) != min(2, 5-offset) || last != (next == 5) {
			t.Fatalf("page at offset %d: %d folders, attributes %v", offset, len(page), root.attrs)
		}
		paged = append(paged, page...)
		pages++
		if last {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		offset = next
	}
	if pages != 3 || !slices.Equal(paged, all) {
		t.Fatalf("%d pages %v, want 3 pages of %v", pages, names(paged), names(all))
	}
	// Past the end: nothing, and the last item is in range.
	msg := e.findFolder("Deep", distinguished("msgfolderroot"), `<m:IndexedPageFolderView MaxEntriesReturned="2" Offset="9" BasePoint="Beginning"/>`)[0]
	if page := foldersOf(t, msg, "RootFolder", "Folders"); len(page) != 0 || msg.child("RootFolder").attrs["IncludesLastItemInRange"] != "true" {
		t.Errorf("offset past the end: %v, %v", names(page), msg.child("RootFolder").attrs)
	}
	// From the end: the last two.
	msg = e.findFolder("Deep", distinguished("msgfolderroot"), `<m:IndexedPageFolderView MaxEntriesReturned="2" Offset="0" BasePoint="End"/>`)[0]
	if page := foldersOf(t, msg, "RootFolder", "Folders"); !slices.Equal(page, all[3:]) {
		t.Errorf("BasePoint End: %v, want %v", names(page), names(all[3:]))
	}
}

// TestEWSCreateFolder creates folders below Inbox, below a new folder and
// below msgfolderroot: each is a store folder named by its path, listed
// over IMAP and among Graph's childFolders with the same id, and shown by
// FindFolder under its parent; a taken name (in any case) under the same
// parent is ErrorFolderExists, the same name under another parent is not.
func TestEWSCreateFolder(t *testing.T) {
	e := newEWSFolderEnv(t)
	create := func(parent string, names ...string) []*xnode {
		var b strings.Builder
		for _, n := range names {
			b.WriteString(`<t:Folder><t:DisplayName>` + n + `</t:DisplayName></t:Folder>`)
		}
		return e.call(`<m:CreateFolder><m:ParentFolderId>` + parent + `</m:ParentFolderId><m:Folders>` + b.String() + `</m:Folders></m:CreateFolder>`)
	}
	createdID := func(msg *xnode) string {
		t.Helper()
		f := foldersOf(t, msg, "Folders")
		if len(f) != 1 || f[0].id == "" {
			t.Fatalf("CreateFolder response without the new folder's id")
		}
		return f[0].id
	}
	escalated := createdID(create(distinguished("inbox"), "Escalated")[0])
	if got := e.storeID("INBOX/Escalated"); got != escalated {
		t.Fatalf("store folder INBOX/Escalated has id %s, CreateFolder said %s", got, escalated)
	}
	level2 := createdID(create(folderID(escalated), "Level 2")[0])
	if got := e.storeID("INBOX/Escalated/Level 2"); got != level2 {
		t.Fatalf("store folder INBOX/Escalated/Level 2 has id %s, CreateFolder said %s", got, level2)
	}
	topEscalated := createdID(create(distinguished("msgfolderroot"), "Escalated")[0])
	if topEscalated == escalated || e.storeID("Escalated") != topEscalated {
		t.Fatalf("Escalated below msgfolderroot: %s (Inbox's is %s)", topEscalated, escalated)
	}

	msgs := create(distinguished("inbox"), "escalated", "Fresh", "Support")
	if got := codes(msgs); !slices.Equal(got, []string{"ErrorFolderExists", "NoError", "ErrorFolderExists"}) || msgs[0].child("Folders") == nil {
		t.Fatalf("CreateFolder escalated, Fresh, Support below Inbox: %v", got)
	}
	if m := create(folderID("AAMkAGnosuchfolder"), "X")[0]; code(m) != "ErrorFolderNotFound" {
		t.Fatalf("CreateFolder below an unknown parent: %s", code(m))
	}

	kids := foldersOf(t, e.findFolder("Shallow", distinguished("inbox"), "")[0], "RootFolder", "Folders")
	if !slices.Equal(names(kids), []string{"Escalated", "Fresh", "Processed", "Support"}) || kids[0].id != escalated || kids[0].children != 1 {
		t.Fatalf("Inbox's children after CreateFolder: %+v", kids)
	}

	// IMAP LIST shows the store paths.
	c := dial(t, e.s)
	if err := c.Authenticate(xoauth2{folderBox, e.tok}); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	hasChildren := map[string]bool{}
	for _, l := range list {
		listed = append(listed, l.Mailbox)
		hasChildren[l.Mailbox] = slices.Contains(l.Attrs, goimap.MailboxAttrHasChildren)
	}
	for _, want := range []string{"INBOX/Escalated", "INBOX/Escalated/Level 2", "INBOX/Fresh", "Escalated"} {
		if !slices.Contains(listed, want) {
			t.Errorf("IMAP LIST lacks %q: %v", want, listed)
		}
	}
	if !hasChildren["INBOX"] || !hasChildren["INBOX/Escalated"] || hasChildren["INBOX/Fresh"] {
		t.Errorf("IMAP LIST \\HasChildren: %v", hasChildren)
	}

	// Graph lists them as childFolders with the same ids.
	_, b := token(t, e.s, tenant, app1, "secret-1", graphScope)
	gtok, _ := b["access_token"].(string)
	graphKids := func(parent string) map[string]string {
		t.Helper()
		req, _ := http.NewRequest("GET", e.s.Endpoints().Graph+"/users/"+folderBox+"/mailFolders/"+parent+"/childFolders?$top=50", nil)
		req.Header.Set("Authorization", "Bearer "+gtok)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.s.CAPool()}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page struct {
			Value []struct {
				ID               string `json:"id"`
				DisplayName      string `json:"displayName"`
				ParentFolderID   string `json:"parentFolderId"`
				ChildFolderCount int    `json:"childFolderCount"`
			} `json:"value"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("Graph childFolders of %s: %d, %v", parent, resp.StatusCode, err)
		}
		out := map[string]string{}
		for _, f := range page.Value {
			out[f.DisplayName] = f.ID
			if f.ParentFolderID != parent && parent != "inbox" {
				t.Errorf("Graph: %s has parentFolderId %s, want %s", f.DisplayName, f.ParentFolderID, parent)
			}
		}
		return out
	}
	if g := graphKids("inbox"); g["Escalated"] != escalated || g["Fresh"] == "" || len(g) != 4 {
		t.Errorf("Graph childFolders of inbox: %v (EWS id of Escalated %s)", g, escalated)
	}
	if g := graphKids(escalated); len(g) != 1 || g["Level 2"] != level2 {
		t.Errorf("Graph childFolders of Escalated: %v", g)
	}
}
