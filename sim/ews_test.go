package sim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/ews"
)

// ewsClient returns our EWS client for an app of the simulator.
func ewsClient(t *testing.T, s *Sim, clientID, secret string) *ews.Client {
	t.Helper()
	hc := client(s)
	return ews.NewClient(ews.Options{URL: s.Endpoints().EWS, HTTPClient: hc, Token: func(ctx context.Context) (string, error) {
		_, b := token(t, s, tenant, clientID, secret, scope)
		tok, _ := b["access_token"].(string)
		return tok, nil
	}})
}

func TestEWSOperationsAndFaults(t *testing.T) {
	seed := &Seed{
		Tenants: []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []App{
			{Tenant: tenant, ClientID: app1, Secret: "secret-1", Roles: []string{"full_access_as_app"}, Mailboxes: []string{"support@contoso.test"}},
			{Tenant: tenant, ClientID: app2, Secret: "secret-2", Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"*"}},
		},
		Mailboxes: []MailboxSeed{{Address: "support@contoso.test", Generate: 3, Folders: []string{"Processed"}}, {Address: "billing@contoso.test"}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := ewsClient(t, s, app1, "secret-1")
	const box = "support@contoso.test"
	inbox := ews.FolderID{Distinguished: "inbox"}
	f, err := c.GetFolder(ctx, box, inbox)
	if err != nil || f.TotalCount != 3 || f.UnreadCount != 3 {
		t.Fatalf("GetFolder = %+v, %v", f, err)
	}
	res, err := c.SyncFolderItems(ctx, box, inbox, "", 2)
	if err != nil || len(res.Creates) != 2 || res.IncludesLastItemInRange {
		t.Fatalf("first page = %+v, %v", res, err)
	}
	res2, err := c.SyncFolderItems(ctx, box, inbox, res.SyncState, 2)
	if err != nil || len(res2.Creates) != 1 || !res2.IncludesLastItemInRange {
		t.Fatalf("second page = %+v, %v", res2, err)
	}
	if _, err := c.SyncFolderItems(ctx, box, inbox, "bm9uc2Vuc2U=", 2); !errors.Is(err, ews.ErrInvalidSyncStateData) {
		t.Fatalf("bad sync state: %v", err)
	}
	ids := []ews.ItemID{res.Creates[0].ItemID, res.Creates[1].ItemID, {ID: "AAMkgone"}}
	items, err := c.GetItemsMIME(ctx, box, ids)
	if err != nil || len(items) != 3 || !strings.Contains(string(items[0].MIME), "Generated message 1") || !errors.Is(items[2].Err, ews.ErrItemNotFound) {
		t.Fatalf("GetItemsMIME = %+v, %v", items, err)
	}
	if err := c.MarkRead(ctx, box, ids[:1]); err != nil {
		t.Fatal(err)
	}
	to, err := c.FindFolder(ctx, box, "Processed")
	if err != nil {
		t.Fatal(err)
	}
	moved, err := c.MoveItems(ctx, box, ids[1:2], to)
	if err != nil || len(moved) != 1 || moved[0].ID == ids[1].ID {
		t.Fatalf("MoveItems = %v, %v (a move gives a new id)", moved, err)
	}
	msgs, _ := s.Store().Messages(box, "INBOX")
	if len(msgs) != 2 || !msgs[0].Seen() {
		t.Fatalf("after mark read and move: %d in INBOX, first seen %v", len(msgs), len(msgs) > 0 && msgs[0].Seen())
	}

	s.EWSBusy(box, 1, 1500*time.Millisecond)
	_, err = c.GetFolder(ctx, box, inbox)
	if d, ok := ews.Backoff(err); !errors.Is(err, ews.ErrServerBusy) || !ok || d != 1500*time.Millisecond {
		t.Fatalf("busy: %v (backoff %v)", err, d)
	}
	s.EWS().Unavailable(box, 1)
	if _, err = c.GetFolder(ctx, box, inbox); !ews.IsTransient(err) {
		t.Fatalf("503: %v, want transient", err)
	}
	if _, err = c.GetFolder(ctx, "billing@contoso.test", inbox); !errors.Is(err, ews.ErrImpersonateUserDenied) {
		t.Fatalf("mailbox outside the grant: %v", err)
	}
	if _, err = c.GetFolder(ctx, "nobody@contoso.test", inbox); !errors.Is(err, ews.ErrNonExistentMailbox) {
		t.Fatalf("unknown mailbox: %v", err)
	}
	var re *ews.ResponseError
	_, err = ewsClient(t, s, app2, "secret-2").GetFolder(ctx, box, inbox)
	if !errors.As(err, &re) || re.HTTPStatus != http.StatusUnauthorized || !strings.Contains(re.Diagnostics, "2000008") {
		t.Fatalf("token without full_access_as_app: %v", err)
	}
	s.BlockEWS(app1)
	if _, err = c.GetFolder(ctx, box, inbox); !errors.Is(err, ews.ErrEWSBlocked) || !strings.Contains(err.Error(), "EwsAllowedAppIDs") {
		t.Fatalf("blocked app: %v", err)
	}
}

// TestEWSRefusesGraphToken posts a valid GetFolder request with a Graph
// token of an app that holds full_access_as_app: Exchange answers 401
// with the wrong-audience diagnostics, and the same request with an
// Exchange token succeeds.
func TestEWSRefusesGraphToken(t *testing.T) {
	seed := &Seed{
		Tenants: []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []App{{Tenant: tenant, ClientID: app1, Secret: "secret-1", Roles: []string{"full_access_as_app"},
			GraphRoles: []string{"Mail.ReadWrite", "full_access_as_app"}, Mailboxes: []string{"*"}}},
		Mailboxes: []MailboxSeed{{Address: "support@contoso.test", Generate: 1}},
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const getFolder = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">` +
		`<soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>` +
		`<t:PrimarySmtpAddress>support@contoso.test</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header>` +
		`<soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>` +
		`<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>`
	post := func(scope string) *http.Response {
		_, b := token(t, s, tenant, app1, "secret-1", scope)
		tok, _ := b["access_token"].(string)
		if tok == "" {
			t.Fatalf("no token for %s: %v", scope, b)
		}
		req, _ := http.NewRequest("POST", s.Endpoints().EWS, strings.NewReader(getFolder))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client(s).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := post(graphScope)
	want := `2000003;reason="The audience claim value is invalid 'https://graph.microsoft.com'.";error_category="invalid_resource"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("x-ms-diagnostics") != want {
		t.Fatalf("Graph token: %d, x-ms-diagnostics %q; want 401, %q", resp.StatusCode, resp.Header.Get("x-ms-diagnostics"), want)
	}
	if resp := post(scope); resp.StatusCode != http.StatusOK {
		t.Fatalf("Exchange token: %d, want 200", resp.StatusCode)
	}
}
