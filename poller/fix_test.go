package poller

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/source"
)

// TestFixPerFailureClass: each way a connection can fail gets a concrete
// fix, found from the error's type, and --once gives up on the wrong
// settings at once instead of spending its retry budget.
func TestFixPerFailureClass(t *testing.T) {
	oldMin, oldBudget := backoffMin, onceBudget
	backoffMin, onceBudget = 10*time.Millisecond, 300*time.Millisecond // connection refused is retried for the budget
	t.Cleanup(func() { backoffMin, onceBudget = oldMin, oldBudget })
	env := newSimEnv(t)
	nc := newNATS(t)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	plain, _ := net.Listen("tcp", "127.0.0.1:0") // answers in plain text, not TLS
	t.Cleanup(func() { plain.Close() })
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("* OK plain-text IMAP here\r\n"))
			c.Close()
		}
	}()
	ews, _ := url.Parse(env.ep.EWS)
	for _, tc := range []struct {
		name, protocol, server, tls, want string
	}{
		{"connection refused", "imap", closedAddr, "", "nothing listens at the server's address"},
		{"untrusted certificate", "imap", env.ep.IMAP, "{}", "tls.ca_file"},
		{"plain-text port", "imap", plain.Addr().String(), "", "did not answer in TLS"},
		{"EWS 404 (wrong path)", "ews", "https://" + ews.Host + "/owa/wrong.asmx", "", "answers HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsCfg := tc.tls
			if tlsCfg == "" {
				tlsCfg = fmt.Sprintf("{ca_file: %s}", env.ep.CAFile)
			}
			cfg, err := config.Parse([]byte(fmt.Sprintf(`nats: {url: "nats://127.0.0.1:1"}
http: {listen: ""}
accounts:
  - {name: support, protocol: %s, tenant_id: %s, client_id: %s, client_secret: %s, authority: %s, server: %q, tls: %s, mailbox: %s}
`, tc.protocol, testTenant, testClient, testSecret, env.ep.Authority, tc.server, tlsCfg, env.boxes[0])), "fix.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var buf logtest.Buffer
			begun := time.Now()
			res := runOnce(t, cfg, nc, debugLogger(&buf))
			if len(res) == 0 || res[0].Err == nil {
				t.Fatalf("results %+v, want a failure", res)
			}
			if fix := Fix(res[0].Err, source.Admin{}); !strings.Contains(fix, tc.want) {
				t.Errorf("Fix(%v) = %q, want it to say %q", res[0].Err, fix, tc.want)
			}
			if log := buf.String(); !strings.Contains(log, tc.want) || strings.Contains(log, `fix=""`) {
				t.Errorf("the failure line lacks the fix:\n%s", log)
			}
			if took := time.Since(begun); tc.name != "connection refused" && took > 5*time.Second {
				t.Errorf("--once took %v to give up on a wrong setting", took)
			}
		})
	}
	dns := fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "outlook.office365.con", IsNotFound: true}})
	if fix := Fix(dns, source.Admin{}); !strings.Contains(fix, `"outlook.office365.con" does not exist in DNS`) {
		t.Errorf("Fix(DNS not found) = %q", fix)
	}
	if errorKind(dns) != "connect" {
		t.Errorf("errorKind(DNS not found) = %q, want connect", errorKind(dns))
	}
}

// TestRunFixForMissingRole: a token without the transport's role is
// diagnosed in run as check diagnoses it, missing admin consent, not as
// a mailbox permission to add; over EWS nobody says the token has no
// roles when it has some.
func TestRunFixForMissingRole(t *testing.T) {
	env := newSimEnv(t, "Mail.Read")
	nc := newNATS(t)
	for _, protocol := range []string{"imap", "ews"} {
		t.Run(protocol, func(t *testing.T) {
			var buf logtest.Buffer
			res := runOnce(t, env.config(t, protocol, ""), nc, debugLogger(&buf))
			role := map[string]string{"imap": "IMAP.AccessAsApp", "ews": "full_access_as_app"}[protocol]
			want := ConsentFix(testClient, role)
			if len(res) != 2 {
				t.Fatalf("%d results, want 2", len(res))
			}
			for _, r := range res {
				if r.Err == nil {
					t.Fatalf("%s: no error without the role", r.Mailbox.Address)
				}
				if strings.Contains(r.Err.Error(), "no roles claim") {
					t.Errorf("%s: %v, but the token has roles", r.Mailbox.Address, r.Err)
				}
			}
			log := buf.String()
			if !strings.Contains(log, "Grant admin consent") || !strings.Contains(log, role) || strings.Count(log, want[:strings.Index(want, `"`)]) < len(res) {
				t.Errorf("the failure lines lack the consent fix %q:\n%s", want, log)
			}
			if strings.Contains(log, "New-ServicePrincipal") || strings.Contains(log, "Add-MailboxPermission") {
				t.Errorf("the failure lines prescribe a mailbox permission for a missing role:\n%s", log)
			}
		})
	}
}

func TestConsentFixNamesTheAPI(t *testing.T) {
	if fix := ConsentFix(testClient, "Mail.ReadWrite"); !strings.Contains(fix, "→ Microsoft Graph →") || strings.Contains(fix, "Exchange Online") || !strings.Contains(fix, "Mail.ReadWrite") {
		t.Errorf("Graph role: %s", fix)
	}
	if fix := ConsentFix(testClient, "full_access_as_app"); !strings.Contains(fix, "Office 365 Exchange Online") || strings.Contains(fix, "Microsoft Graph") {
		t.Errorf("EWS role: %s", fix)
	}
}
