package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pw is an account that logs in with a password instead of an app.
func pw(extra ...string) []byte {
	return y(append([]string{
		"accounts:",
		"  - name: lists",
		"    auth: password",
		"    server: mail.example.org:143",
		"    starttls: true",
		"    password: pw-Secret-Zq93",
		"    mailbox: lists@example.org",
	}, extra...)...)
}

func TestPasswordAccountLoads(t *testing.T) {
	c := mustParse(t, pw(), nil)
	a := c.Accounts[0]
	if a.OAuth() || a.Auth != AuthPassword || !a.StartTLS || a.Password != "pw-Secret-Zq93" || a.Login() != "lists@example.org" {
		t.Fatalf("account = %+v", a)
	}
	if a.Server != "mail.example.org:143" || a.Access != "" {
		t.Errorf("server %q, access %q", a.Server, a.Access)
	}
	for _, s := range []string{a.String(), a.GoString(), a.LogValue().String()} {
		if strings.Contains(s, "pw-Secret-Zq93") {
			t.Errorf("the password shows in %q", s)
		}
		if !strings.Contains(s, "password") {
			t.Errorf("%q does not say the credential is a password", s)
		}
	}
}

func TestPasswordFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("from-File-77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, y("accounts:", "  - name: onprem", "    protocol: ews", "    auth: ntlm",
		"    server: https://mail.contoso.com/EWS/Exchange.asmx", `    username: 'CONTOSO\svc'`, "    password_file: "+f,
		"    access: delegate", "    mailbox: helpdesk@contoso.com"), nil)
	a := c.Accounts[0]
	if a.Password != "from-File-77" || a.Login() != `CONTOSO\svc` || a.Access != AccessDelegate {
		t.Fatalf("password %v, login %q, access %q", a.Password == "from-File-77", a.Login(), a.Access)
	}
	// EWS over OAuth defaults to impersonation.
	if c := mustParse(t, base("    protocol: ews"), nil); c.Accounts[0].Access != AccessImpersonation || c.Accounts[0].Auth != AuthOAuth {
		t.Errorf("ews oauth: access %q auth %q", c.Accounts[0].Access, c.Accounts[0].Auth)
	}
}

func TestAuthErrors(t *testing.T) {
	tests := []struct {
		name, key, msg, fix string
		data                []byte
	}{
		{"ntlm on imap", "accounts[0].auth", `"ntlm" is not`, "password", y("accounts:", "  - name: l", "    auth: ntlm", "    server: m.example.org:993", "    password: x", "    mailbox: l@example.org")},
		{"password with oauth", "accounts[0].password", "used only with auth", "set auth", base("    password: x")},
		{"password without password", "accounts[0]", "needs a password", "password_file", y("accounts:", "  - name: l", "    auth: password", "    server: m.example.org:993", "    mailbox: l@example.org")},
		{"password without server", "accounts[0]", "needs the server key", "host:port", y("accounts:", "  - name: l", "    auth: password", "    password: x", "    mailbox: l@example.org")},
		{"password with tenant", "accounts[0].tenant_id", "not used with auth: password", "auth: oauth", pw("    tenant_id: contoso.com")},
		{"starttls on ews", "accounts[0].starttls", "only with protocol: imap", "https", base("    protocol: ews", "    starttls: true")},
		{"access on imap", "accounts[0].access", "only with protocol: ews", "remove", base("    access: delegate")},
		{"basic on graph", "accounts[0].auth", `"basic" is not`, "oauth", y("accounts:", "  - name: g", "    protocol: graph", "    auth: basic", "    server: https://graph.example/v1.0", "    password: x", "    mailbox: g@example.org")},
		{"resource not https", "accounts[0].resource", "https URL", "on-premises", base("    protocol: ews", "    resource: http://mail.contoso.com")},
		{"notifications over http", "graph.notifications_url", "only to https", "reverse proxy", base("graph:", "  notifications_url: http://hooks.contoso.com/graph/notifications")},
		{"notifications without http", "graph.notifications_url", "http.listen", "http.listen", base("http:", "  listen: ''", "graph:", "  notifications_url: https://hooks.contoso.com/graph/notifications")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := problemAt(t, tt.data, tt.key, tt.msg)
			if !strings.Contains(e.Fix, tt.fix) {
				t.Errorf("fix = %q, want it to contain %q", e.Fix, tt.fix)
			}
			if es := problems(t, tt.data, nil); strings.Contains(es.Error(), "pw-Secret-Zq93") {
				t.Errorf("the password shows in %q", es.Error())
			}
		})
	}
}
