package poller

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/ews"
	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/source"
)

// Tokens are cached per (app, scope, cloud): accounts of one app share a
// token source per scope, and a second scope (Graph, later) gets its own,
// never a token of the wrong audience.
func TestTokenSourcesPerAppScopeAndCloud(t *testing.T) {
	trs := NewTransports(nil)
	acct := func(name, cloud string) *config.Account {
		return &config.Account{Name: name, Protocol: "imap", TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret,
			Cloud: cloud, Server: "127.0.0.1:993"}
	}
	a, b, gov := acct("a", "public"), acct("b", "public"), acct("gov", "usgov")
	hc := &http.Client{}
	get := func(a *config.Account, scope string) any {
		s, err := trs.Source(a, hc, scope)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const graph = "https://graph.microsoft.com/.default"
	if get(a, imap.Scope) != get(b, imap.Scope) {
		t.Error("two accounts of one app got two token sources for one scope")
	}
	if get(a, imap.Scope) == get(a, graph) {
		t.Error("one token source serves two scopes")
	}
	if get(a, imap.Scope) == get(gov, imap.Scope) {
		t.Error("one token source serves two clouds")
	}
	if imap.Scope != ews.Scope {
		t.Errorf("IMAP and EWS scopes differ (%s, %s): they are one Exchange audience", imap.Scope, ews.Scope)
	}
}

// The fix a transport error carries is the one run logs and check prints,
// with the account's ids filled in.
func TestFixFromTransportError(t *testing.T) {
	err := fmt.Errorf("authenticate x@contoso.test: %w", imap.ErrAuthFailed)
	fix := Fix(err, source.Admin{Account: "support", TenantID: testTenant, ClientID: testClient, ObjectID: "oid-1", Mailbox: "x@contoso.test"})
	for _, want := range []string{"New-ServicePrincipal -AppId " + testClient + " -ObjectId oid-1", "Add-MailboxPermission -Identity x@contoso.test", testTenant} {
		if !strings.Contains(fix, want) {
			t.Errorf("Fix() lacks %q:\n%s", want, fix)
		}
	}
	if k := errorKind(err); k != "auth" {
		t.Errorf("errorKind = %q, want auth", k)
	}
	busy := fmt.Errorf("sync: %w", &ews.ResponseError{Code: "ErrorServerBusy", BackOff: 1e9})
	if k := errorKind(busy); k != "throttled" {
		t.Errorf("errorKind(ErrorServerBusy) = %q, want throttled", k)
	}
	blocked := &ews.ResponseError{Code: "EwsBlocked"}
	if fix := Fix(blocked, source.Admin{ClientID: testClient}); !strings.Contains(fix, `-EwsAllowedAppIDs "`+testClient) {
		t.Errorf("EWS blocked fix lacks the client id: %s", fix)
	}
}

// An account's auth picks what its transport asks for: Exchange Online
// tokens by default, the on-premises resource's for hybrid modern auth,
// no token at all with a password (TokenSource says so).
func TestTransportCredentials(t *testing.T) {
	trs := NewTransports(nil)
	for _, c := range []struct {
		acct      config.Account
		scope     string
		hasTokens bool
	}{
		{config.Account{Name: "online", Protocol: "ews", Server: "https://outlook.office365.com/EWS/Exchange.asmx"}, ews.Scope, true},
		{config.Account{Name: "hybrid", Protocol: "ews", Server: "https://mail.contoso.com/EWS/Exchange.asmx", Resource: "https://mail.contoso.com/"},
			"https://mail.contoso.com/.default", true},
		{config.Account{Name: "ntlm", Protocol: "ews", Auth: config.AuthNTLM, Username: `CONTOSO\svc`, Password: "pw",
			Server: "https://mail.contoso.com/EWS/Exchange.asmx"}, "", false},
		{config.Account{Name: "imap", Protocol: "imap", Auth: config.AuthPassword, Password: "pw", Server: "mail.example.org:993"}, "", false},
	} {
		a := c.acct
		a.TenantID, a.ClientID, a.ClientSecret = testTenant, testClient, testSecret
		tr, err := trs.For(&a)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if tr.Scope() != c.scope {
			t.Errorf("%s: scope %q, want %q", a.Name, tr.Scope(), c.scope)
		}
		if _, err := trs.TokenSource(&a); (err == nil) != c.hasTokens {
			t.Errorf("%s: TokenSource error %v, want tokens %v", a.Name, err, c.hasTokens)
		}
	}
}
