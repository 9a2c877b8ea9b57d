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
