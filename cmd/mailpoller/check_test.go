package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

const (
	ckTenant  = "11111111-1111-1111-1111-111111111111"
	ckGood    = "22222222-2222-2222-2222-222222222222" // IMAP.AccessAsApp, all mailboxes
	ckNoRoles = "33333333-3333-3333-3333-333333333333" // consent missing
	ckNoGrant = "44444444-4444-4444-4444-444444444444" // role, but no FullAccess on billing@
)

func startCheckSim(t *testing.T) *sim.Sim {
	t.Helper()
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: ckTenant, Domain: "contoso.test"}},
		Apps: []sim.App{
			{Tenant: ckTenant, ClientID: ckGood, Secret: "good-secret-value", Roles: []string{"IMAP.AccessAsApp", "full_access_as_app"}, GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}},
			{Tenant: ckTenant, ClientID: ckNoRoles, Secret: "good-secret-value"},
			{Tenant: ckTenant, ClientID: ckNoGrant, Secret: "good-secret-value", Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"support@contoso.test"}},
		},
		Mailboxes: []sim.MailboxSeed{{Address: "support@contoso.test", Generate: 2, Folders: []string{"Done"}}, {Address: "billing@contoso.test"}},
	}
	return simtest.Start(t, seed)
}

// runCheck writes a one-account config and runs `mailpoller check` on it.
func runCheck(t *testing.T, s *sim.Sim, clientID, secret, extra string, args ...string) (int, string) {
	t.Helper()
	ep := s.Endpoints()
	cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
accounts:
  - name: support
    tenant_id: %s
    client_id: %s
    client_secret: %s
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: support@contoso.test
    additional_users: [billing@contoso.test]
%s`, t.TempDir(), ckTenant, clientID, secret, ep.Authority, ep.IMAP, ep.CAFile, extra)
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	var out, errOut bytes.Buffer
	code := dispatch(append([]string{"check", "-c", path}, args...), &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestCheckDiagnoses(t *testing.T) {
	s := startCheckSim(t)
	for _, tc := range []struct {
		name, client, secret, extra string
		code                        int
		want                        []string
	}{
		{"all good", ckGood, "good-secret-value", "", 0,
			[]string{"ok      token", "roles=[IMAP.AccessAsApp,full_access_as_app]", "ok      mailbox  support/support@contoso.test/INBOX  2 messages, 2 unread", "ok      mailbox  support/billing@contoso.test/INBOX"}},
		{"secret id pasted instead of the value", ckGood, "a1b2c3d4-0000-0000-0000-000000000000", "", 1,
			[]string{"FAILED  token", "AADSTS7000215", "not its Secret ID"}},
		{"admin consent missing", ckNoRoles, "good-secret-value", "", 1,
			[]string{"FAILED  permission", "the token has no roles claim", "IMAP.AccessAsApp", "Grant admin consent"}},
		{"mailbox permission missing", ckNoGrant, "good-secret-value", "", 1,
			[]string{"ok      mailbox  support/support@contoso.test/INBOX", "FAILED  mailbox  support/billing@contoso.test/INBOX",
				"New-ServicePrincipal -AppId " + ckNoGrant + " -ObjectId " + s.ObjectID(ckNoGrant),
				"Add-MailboxPermission -Identity billing@contoso.test -User " + s.ObjectID(ckNoGrant) + " -AccessRights FullAccess"}},
		{"move_to folder missing", ckGood, "good-secret-value", "    after_read: move\n    move_to: Archive\n", 1,
			[]string{`move_to folder "Archive" does not exist`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCheck(t, s, tc.client, tc.secret, tc.extra)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", code, tc.code, out)
			}
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tc.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "good-secret-value") || s.LeakedToken(out) != "" {
				t.Errorf("output shows a secret or a token:\n%s", out)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	s := startCheckSim(t)
	code, out := runCheck(t, s, ckNoRoles, "good-secret-value", "", "--json")
	var rows []checkRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	failed := 0
	for _, r := range rows {
		if !r.OK && !r.Skipped {
			failed++
			if r.Fix == "" {
				t.Errorf("failed row %s %s has no fix", r.Check, r.Target)
			}
		}
	}
	if code != 1 || failed == 0 {
		t.Fatalf("exit %d with %d failed rows, want 1 and some", code, failed)
	}
}

func TestCheckBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("accounts:\n  - name: x\n    tenant_idd: 1\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"check", "-c", path}, &out, &errOut); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "bad.yaml:3") || !strings.Contains(errOut.String(), "tenant_idd") {
		t.Fatalf("error does not name file:line and key:\n%s", errOut.String())
	}
}

// TestCheckEWS: the same checks over EWS, and the Exchange Online EWS
// block reported as exactly that, with the fix.
func TestCheckEWS(t *testing.T) {
	s := startCheckSim(t)
	ep := s.Endpoints()
	write := func() string {
		cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
accounts:
  - name: sales
    protocol: ews
    tenant_id: %s
    client_id: %s
    client_secret: good-secret-value
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: support@contoso.test
`, t.TempDir(), ckTenant, ckGood, ep.Authority, ep.EWS, ep.CAFile)
		path := filepath.Join(t.TempDir(), "ews.yaml")
		os.WriteFile(path, []byte(cfg), 0o600)
		return path
	}
	path := write()
	var out bytes.Buffer
	if code := dispatch([]string{"check", "-c", path}, &out, &out); code != 0 {
		t.Fatalf("healthy EWS account: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "full_access_as_app") || !strings.Contains(out.String(), "2 messages, 2 unread") {
		t.Errorf("EWS check output:\n%s", out.String())
	}
	s.BlockEWS(ckGood)
	out.Reset()
	if code := dispatch([]string{"check", "-c", path}, &out, &out); code != 1 {
		t.Fatalf("blocked EWS: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"EwsBlocked", "EwsAllowedAppIDs", "1 April 2027"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("blocked EWS output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCheckConsentDiagnosedOnce: without the role, the permission row is
// the one diagnosis; the mailbox rows are not checked and prescribe
// nothing.
func TestCheckConsentDiagnosedOnce(t *testing.T) {
	s := startCheckSim(t)
	code, out := runCheck(t, s, ckNoRoles, "good-secret-value", "")
	if code != 1 {
		t.Errorf("exit code %d, want 1\n%s", code, out)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, w := range []string{"FAILED permission support", "Grant admin consent",
		"skipped mailbox support/support@contoso.test/INBOX not checked: fix the permission first",
		"skipped mailbox support/billing@contoso.test/INBOX not checked: fix the permission first"} {
		if !strings.Contains(flat, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range []string{"New-ServicePrincipal", "Add-MailboxPermission", "FAILED mailbox"} {
		if strings.Contains(flat, w) {
			t.Errorf("output has %q after the missing consent:\n%s", w, out)
		}
	}
}

// TestCheckTransientTokenError: check tries once, so it does not claim
// to retry; it says to run it again.
func TestCheckTransientTokenError(t *testing.T) {
	s := startCheckSim(t)
	s.FailTokens(sim.TokenFault{Status: 503}, 1)
	code, out := runCheck(t, s, ckGood, "good-secret-value", "")
	if code != 1 {
		t.Errorf("exit code %d, want 1\n%s", code, out)
	}
	if strings.Contains(strings.ToLower(out), "retrying") || !strings.Contains(out, "run check again") {
		t.Errorf("check's fix for a 503 from Entra:\n%s", out)
	}
}

// TestCheckEWSRoleMissing: a token with roles, none of them EWS's, is
// not reported as having no roles claim.
func TestCheckEWSRoleMissing(t *testing.T) {
	s := startCheckSim(t)
	ep := s.Endpoints()
	cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
accounts:
  - {name: sales, protocol: ews, tenant_id: %s, client_id: %s, client_secret: good-secret-value, authority: %s, server: %s, tls: {ca_file: %s}, mailbox: support@contoso.test}
`, t.TempDir(), ckTenant, ckNoGrant, ep.Authority, ep.EWS, ep.CAFile)
	path := filepath.Join(t.TempDir(), "ews.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	var out bytes.Buffer
	if code := dispatch([]string{"check", "-c", path}, &out, &out); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	if o := out.String(); strings.Contains(o, "no roles claim") || !strings.Contains(o, "lack full_access_as_app") {
		t.Errorf("EWS check without full_access_as_app:\n%s", o)
	}
}

// TestCheckGraph: a Graph account with Mail.ReadWrite passes and shows
// the counts; an app without Graph permissions gets the consent fix that
// names Microsoft Graph.
func TestCheckGraph(t *testing.T) {
	s := startCheckSim(t)
	ep := s.Endpoints()
	check := func(clientID string) (int, string) {
		cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
accounts:
  - {name: sales, protocol: graph, tenant_id: %s, client_id: %s, client_secret: good-secret-value, authority: %s, server: %s, tls: {ca_file: %s}, mailbox: support@contoso.test}
`, t.TempDir(), ckTenant, clientID, ep.Authority, ep.Graph, ep.CAFile)
		path := filepath.Join(t.TempDir(), "graph.yaml")
		os.WriteFile(path, []byte(cfg), 0o600)
		var out bytes.Buffer
		code := dispatch([]string{"check", "-c", path}, &out, &out)
		return code, out.String()
	}
	if code, out := check(ckGood); code != 0 || !strings.Contains(out, "Mail.ReadWrite") || !strings.Contains(out, "2 messages, 2 unread") {
		t.Errorf("healthy Graph account: exit %d\n%s", code, out)
	}
	code, out := check(ckNoGrant)
	flat := strings.Join(strings.Fields(out), " ")
	if code != 1 || !strings.Contains(flat, "Microsoft Graph") || !strings.Contains(flat, "Mail.ReadWrite") || strings.Contains(flat, "Office 365 Exchange Online →") {
		t.Errorf("Graph account without Graph permissions: exit %d\n%s", code, out)
	}
}

// TestCheckNotifications: check sends graph.notifications_url Graph's
// validation request and says who answered, or why Graph would refuse it.
func TestCheckNotifications(t *testing.T) {
	s := startCheckSim(t)
	ep := s.Endpoints()
	listen := freeAddr(t)
	check := func(url string) (int, string) {
		cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
http: {listen: %q}
graph: {notifications_url: %q}
accounts:
  - {name: sales, protocol: graph, tenant_id: %s, client_id: %s, client_secret: good-secret-value, authority: %s, server: %s, tls: {ca_file: %s}, mailbox: support@contoso.test}
`, t.TempDir(), listen, url, ckTenant, ckGood, ep.Authority, ep.Graph, ep.CAFile)
		path := filepath.Join(t.TempDir(), "graph.yaml")
		os.WriteFile(path, []byte(cfg), 0o600)
		var out bytes.Buffer
		code := dispatch([]string{"check", "-c", path}, &out, &out)
		return code, strings.Join(strings.Fields(out.String()), " ")
	}
	want := func(name string, code int, out string, wantCode int, parts ...string) {
		t.Helper()
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d\n%s", name, code, wantCode, out)
		}
		for _, p := range parts {
			if !strings.Contains(out, p) {
				t.Errorf("%s: output lacks %q\n%s", name, p, out)
			}
		}
	}
	here := "http://" + listen + "/graph/notifications"

	// No mailpoller running: check answers on http.listen itself.
	code, out := check(here)
	want("free port", code, out, 0, "ok notifications "+here, "check itself on http.listen")

	// Nothing answers where the URL leads.
	code, out = check("http://" + freeAddr(t) + "/graph/notifications")
	want("nothing there", code, out, 1, "FAILED notifications", "connection refused", "forwards to http://"+listen+"/graph/notifications")

	// A running mailpoller without graph.notifications_url in its config.
	serve := func(h http.Handler) func() {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		return func() { srv.Close() }
	}
	stop := serve(poller.NewMonitor().Handler())
	code, out = check(here)
	stop()
	want("older mailpoller", code, out, 1, "its own config has no graph.notifications_url", "reload it")

	// Something else on the port: a web server's 404 page.
	stop = serve(http.NotFoundHandler())
	code, out = check(here)
	stop()
	want("another server", code, out, 1, "HTTP 404", "forward it (reverse proxy or ingress) to http://"+listen+"/graph/notifications")
}
