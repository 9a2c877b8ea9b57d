package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

// TestCheckOnPremises: check explains the on-premises failures in plain
// words with their fixes (NTLM off, Basic off, a refused password, the
// impersonation right missing, a certificate not trusted), and passes a
// healthy NTLM account and a password IMAP account without token rows.
func TestCheckOnPremises(t *testing.T) {
	seed := &sim.Seed{
		Tenants:   []sim.Tenant{{ID: ckTenant, Domain: "contoso.test"}},
		Users:     []sim.User{{Login: "svc@contoso.test", Domain: "CONTOSO", Password: "pw-onprem", Mailboxes: []string{"support@contoso.test"}}},
		Mailboxes: []sim.MailboxSeed{{Address: "support@contoso.test", Generate: 2}},
	}
	s := simtest.Start(t, seed)
	ep := s.Endpoints()
	check := func(protocol, auth, user, pass, access, caFile string) (int, string) {
		server := ep.EWS
		if protocol == "imap" {
			server = ep.IMAP
		}
		extra := ""
		if access != "" {
			extra = "    access: " + access + "\n"
		}
		cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
accounts:
  - name: onprem
    protocol: %s
    auth: %s
    username: '%s'
    password: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: support@contoso.test
%s`, t.TempDir(), protocol, auth, user, pass, server, caFile, extra)
		path := filepath.Join(t.TempDir(), "config.yaml")
		os.WriteFile(path, []byte(cfg), 0o600)
		var out bytes.Buffer
		code := dispatch([]string{"check", "-c", path}, &out, &out)
		return code, out.String()
	}
	otherCA := simtest.Start(t, seed).Endpoints().CAFile // another CA
	for _, c := range []struct {
		name                                   string
		prepare                                func()
		protocol, auth, user, pass, access, ca string
		code                                   int
		want                                   []string
	}{
		{"healthy ntlm", func() {}, "ews", "ntlm", `CONTOSO\svc`, "pw-onprem", "delegate", ep.CAFile, 0, []string{"2 messages, 2 unread"}},
		{"healthy imap password", func() {}, "imap", "password", "svc@contoso.test", "pw-onprem", "", ep.CAFile, 0, []string{"2 messages, 2 unread"}},
		{"wrong password", func() {}, "ews", "ntlm", `CONTOSO\svc`, "nope", "delegate", ep.CAFile, 1, []string{"refused the username and password", "password_file"}},
		{"imap wrong password", func() {}, "imap", "password", "svc@contoso.test", "nope", "", ep.CAFile, 1, []string{"refused the username and password"}},
		{"no impersonation", func() {}, "ews", "basic", "svc@contoso.test", "pw-onprem", "impersonation", ep.CAFile, 1, []string{"New-ManagementRoleAssignment", "ApplicationImpersonation"}},
		{"ntlm off", func() { s.EWS().WindowsAuth(false) }, "ews", "ntlm", `CONTOSO\svc`, "pw-onprem", "delegate", ep.CAFile, 1, []string{"does not offer NTLM", "-WindowsAuthentication $true"}},
		{"basic off", func() { s.EWS().WindowsAuth(true); s.EWS().BasicAuth(false) }, "ews", "basic", "svc@contoso.test", "pw-onprem", "delegate", ep.CAFile, 1, []string{"does not offer Basic", "-BasicAuthentication $true"}},
		{"untrusted certificate", func() { s.EWS().BasicAuth(true) }, "ews", "ntlm", `CONTOSO\svc`, "pw-onprem", "delegate", otherCA, 1, []string{"tls.ca_file"}},
	} {
		c.prepare()
		code, out := check(c.protocol, c.auth, c.user, c.pass, c.access, c.ca)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, out)
			}
		}
		if strings.Contains(out, "pw-onprem") || strings.Contains(out, "token ") {
			t.Errorf("%s: the output shows the password or a token row:\n%s", c.name, out)
		}
	}
}
