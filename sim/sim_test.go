package sim

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	app1   = "22222222-2222-2222-2222-222222222222" // IMAP role (and Graph's Mail.ReadWrite), all mailboxes
	app2   = "33333333-3333-3333-3333-333333333333" // no roles (consent missing)
	app3   = "44444444-4444-4444-4444-444444444444" // IMAP role, only support@
)

func start(t *testing.T, opts *Options) *Sim {
	t.Helper()
	seed := &Seed{
		Tenants: []Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []App{
			{Tenant: tenant, ClientID: app1, Secret: "secret-1", Roles: []string{"IMAP.AccessAsApp"}, GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}},
			{Tenant: tenant, ClientID: app2, Secret: "secret-2"},
			{Tenant: tenant, ClientID: app3, Secret: "secret-3", Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"support@contoso.test"}},
		},
		Mailboxes: []MailboxSeed{{Address: "support@contoso.test", Generate: 3}, {Address: "billing@contoso.test"}},
	}
	s, err := Start(context.Background(), seed, opts)
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func client(s *Sim) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}}
}

func token(t *testing.T, s *Sim, tenantID, clientID, secret, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	resp, err := client(s).PostForm(s.Endpoints().Authority+"/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

const scope = "https://outlook.office365.com/.default"

func TestTokenEndpoint(t *testing.T) {
	s := start(t, nil)
	code, body := token(t, s, tenant, app1, "secret-1", scope)
	if code != 200 || body["token_type"] != "Bearer" || body["expires_in"] == nil {
		t.Fatalf("token = %d %v", code, body)
	}
	c, err := s.Verify(body["access_token"].(string))
	if err != nil || c.Tenant != tenant || c.AppID != app1 || len(c.Roles) != 1 || c.ObjectID != s.ObjectID(app1) {
		t.Fatalf("claims = %+v, %v", c, err)
	}
	// An app without consented permissions still gets a token, with no roles claim.
	_, body = token(t, s, tenant, app2, "secret-2", scope)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(body["access_token"].(string), ".")[1])
	if strings.Contains(string(payload), `"roles"`) {
		t.Fatalf("token of an app without roles carries a roles claim: %s", payload)
	}
	for _, tc := range []struct {
		name                   string
		tenant, client, secret string
		scope                  string
		status, aadsts         int
		errName                string
	}{
		{"wrong secret", tenant, app1, "nope", scope, 401, 7000215, "invalid_client"},
		{"unknown tenant", "99999999-9999-9999-9999-999999999999", app1, "secret-1", scope, 400, 90002, "invalid_request"},
		{"unknown app", tenant, "55555555-5555-5555-5555-555555555555", "x", scope, 400, 700016, "unauthorized_client"},
		{"scope without /.default", tenant, app1, "secret-1", "IMAP.AccessAsApp", 400, 1002012, "invalid_scope"},
		{"other resource", tenant, app1, "secret-1", "https://graph.example/.default", 400, 500011, "invalid_resource"},
	} {
		code, body := token(t, s, tc.tenant, tc.client, tc.secret, tc.scope)
		codes, _ := body["error_codes"].([]any)
		desc, _ := body["error_description"].(string)
		if code != tc.status || body["error"] != tc.errName || len(codes) != 1 || int(codes[0].(float64)) != tc.aadsts ||
			!strings.HasPrefix(desc, "AADSTS") || body["trace_id"] == nil || body["correlation_id"] == nil {
			t.Errorf("%s: %d %v", tc.name, code, body)
		}
	}
	if n := s.TokenRequests(app1); n != 5 {
		t.Errorf("TokenRequests(app1) = %d, want 5", n)
	}
	// LeakedToken finds an issued token (or any of its parts) in text, and
	// nothing in text that merely looks base64, like an EWS ItemId.
	tok := issuedToken(t, s)
	sig := tok[strings.LastIndex(tok, ".")+1:]
	for text, leaked := range map[string]bool{
		"auth=Bearer " + tok:                     true,
		"signature " + sig + " logged":           true,
		"server_id=AAMkeyJkcDnlCHIdo1r7nfNT4Z1x": false,
	} {
		if got := s.LeakedToken(text) != ""; got != leaked {
			t.Errorf("LeakedToken(%q) found something: %v, want %v", text, got, leaked)
		}
	}
}

// issuedToken gets a token for app1 from the token endpoint.
func issuedToken(t *testing.T, s *Sim) string {
	_, body := token(t, s, tenant, app1, "secret-1", scope)
	return body["access_token"].(string)
}

type xoauth2 struct{ user, token string }

func (x xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}
func (x xoauth2) Next([]byte) ([]byte, error) { return nil, errors.New("unexpected challenge") }

func dial(t *testing.T, s *Sim) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(s.Endpoints().IMAP, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.CAPool()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestIMAPAuthorization(t *testing.T) {
	s := start(t, nil)
	tok := func(app, secret string) string {
		_, b := token(t, s, tenant, app, secret, scope)
		return b["access_token"].(string)
	}
	for _, tc := range []struct {
		name, user, token string
		ok                bool
	}{
		{"granted", "billing@contoso.test", tok(app1, "secret-1"), true},
		{"no roles", "support@contoso.test", tok(app2, "secret-2"), false},
		{"not granted on this mailbox", "billing@contoso.test", tok(app3, "secret-3"), false},
		{"granted on its mailbox", "support@contoso.test", tok(app3, "secret-3"), true},
		{"forged", "support@contoso.test", tok(app1, "secret-1") + "x", false},
		{"unknown mailbox", "nobody@contoso.test", tok(app1, "secret-1"), false},
	} {
		err := dial(t, s).Authenticate(xoauth2{tc.user, tc.token})
		var ie *goimap.Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: Authenticate() = %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &ie) || ie.Type != goimap.StatusResponseTypeNo || ie.Text != "AUTHENTICATE failed."):
			t.Errorf("%s: Authenticate() = %v, want NO AUTHENTICATE failed.", tc.name, err)
		}
	}
}

// TestIMAPWire checks Exchange's exact words on the wire.
func TestIMAPWire(t *testing.T) {
	s := start(t, nil)
	conn, line := dialIMAP(t, s)
	bad := base64.StdEncoding.EncodeToString([]byte("user=support@contoso.test\x01auth=Bearer nope\x01\x01"))
	conn.Write([]byte("A1 AUTHENTICATE XOAUTH2 " + bad + "\r\n"))
	if got := line(); got != "A1 NO AUTHENTICATE failed." {
		t.Fatalf("refused XOAUTH2 answer = %q, want %q", got, "A1 NO AUTHENTICATE failed.")
	}
	_, b := token(t, s, tenant, app1, "secret-1", scope)
	good := base64.StdEncoding.EncodeToString([]byte("user=support@contoso.test\x01auth=Bearer " + b["access_token"].(string) + "\x01\x01"))
	conn.Write([]byte("A2 AUTHENTICATE XOAUTH2 " + good + "\r\n"))
	for l := line(); !strings.HasPrefix(l, "A2 "); l = line() {
	}
	s.ThrottleIMAP("support@contoso.test", 1, 250*time.Millisecond)
	conn.Write([]byte("A3 SELECT INBOX\r\n"))
	if got := line(); got != "A3 BAD Request is throttled. Suggested Backoff Time: 250 milliseconds" {
		t.Fatalf("throttled answer = %q", got)
	}
	s.ExpireSessions("support@contoso.test")
	conn.Write([]byte("A4 NOOP\r\n"))
	if got := line(); got != "* BYE Session invalidated - AccessTokenExpired" {
		t.Fatalf("expiry = %q", got)
	}
}

func TestIMAPMailboxOps(t *testing.T) {
	s := start(t, nil)
	_, b := token(t, s, tenant, app1, "secret-1", scope)
	c := dial(t, s)
	if err := c.Authenticate(xoauth2{"support@contoso.test", b["access_token"].(string)}); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 3 {
		t.Fatalf("Select = %+v, %v", sel, err)
	}
	var all goimap.UIDSet
	all.AddRange(2, 0)
	data, err := c.UIDSearch(&goimap.SearchCriteria{UID: []goimap.UIDSet{all}, NotFlag: []goimap.Flag{goimap.FlagSeen}}, nil).Wait()
	if err != nil || len(data.AllUIDs()) != 2 {
		t.Fatalf("UIDSearch = %v, %v", data.AllUIDs(), err)
	}
	msgs, err := c.Fetch(goimap.UIDSetNum(2), &goimap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || !strings.Contains(string(msgs[0].BodySection[0].Bytes), "Generated message 2") {
		t.Fatalf("Fetch = %v, %v", msgs, err)
	}
	if err := c.Store(goimap.UIDSetNum(2), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Processed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(goimap.UIDSetNum(3), "Processed").Wait(); err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.Store().Messages("support@contoso.test", "INBOX")
	moved, _ := s.Store().Messages("support@contoso.test", "Processed")
	if len(inbox) != 2 || !inbox[1].Seen() || len(moved) != 1 {
		t.Fatalf("after STORE and MOVE: inbox %d (second seen %v), Processed %d", len(inbox), len(inbox) > 1 && inbox[1].Seen(), len(moved))
	}
	// IDLE reports a delivery.
	got := make(chan uint32, 4)
	c2 := dialHandler(t, s, func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			got <- *d.NumMessages
		}
	})
	if err := c2.Authenticate(xoauth2{"support@contoso.test", b["access_token"].(string)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c2.Idle()
	if err != nil {
		t.Fatal(err)
	}
	s.Store().Deliver("support@contoso.test", "INBOX", Generate("support@contoso.test", 9), time.Now())
	select {
	case n := <-got:
		if n != 3 {
			t.Errorf("IDLE EXISTS %d, want 3", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IDLE did not report the delivery")
	}
	idle.Close()
	idle.Wait()
}

func dialHandler(t *testing.T, s *Sim, f func(*imapclient.UnilateralDataMailbox)) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(s.Endpoints().IMAP, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.CAPool()},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: f}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLoadSeed(t *testing.T) {
	seed, err := LoadSeed("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	support, _ := s.Store().Messages("support@contoso.test", "INBOX")
	billing, _ := s.Store().Messages("billing@contoso.test", "INBOX")
	if len(support) != 5 || len(billing) == 0 || len(s.Store().Folders("support@contoso.test")) != 2 {
		t.Fatalf("seeded %d + %d messages, folders %v", len(support), len(billing), s.Store().Folders("support@contoso.test"))
	}
	// graph_roles are the roles of Graph tokens; roles those of Exchange's.
	for sc, want := range map[string]string{scope: `["IMAP.AccessAsApp","full_access_as_app"]`, graphScope: `["Mail.ReadWrite"]`} {
		_, b := token(t, s, seed.Tenants[0].ID, seed.Apps[0].ClientID, seed.Apps[0].Secret, sc)
		tok, _ := b["access_token"].(string)
		if tok == "" {
			t.Fatalf("no token for %s: %v", sc, b)
		}
		if got, _ := json.Marshal(claimsOf(t, tok)["roles"]); string(got) != want {
			t.Errorf("seed app's roles for %s: %s, want %s", sc, got, want)
		}
	}
}
