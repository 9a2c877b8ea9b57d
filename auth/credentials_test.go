package auth_test

import (
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/auth"
)

func TestNewValidation(t *testing.T) {
	ok := auth.Credentials{TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret}
	tests := []struct {
		name string
		edit func(*auth.Credentials)
		want []string // substrings of the error; nil means valid
	}{
		{"valid", func(*auth.Credentials) {}, nil},
		{"domain tenant", func(c *auth.Credentials) { c.TenantID = "contoso.onmicrosoft.com" }, nil},
		{"trailing slash", func(c *auth.Credentials) { c.Authority = "https://login.microsoftonline.us/" }, nil},
		{"loopback http", func(c *auth.Credentials) { c.Authority, c.AllowHTTP = "http://127.0.0.1:8080", true }, nil},
		{"localhost http", func(c *auth.Credentials) { c.Authority, c.AllowHTTP = "http://localhost:8080", true }, nil},
		{"graph scope", func(c *auth.Credentials) { c.Scope = "https://graph.microsoft.com/.default" }, nil},
		{"no tenant", func(c *auth.Credentials) { c.TenantID = "" }, []string{"tenant_id is empty"}},
		{"common", func(c *auth.Credentials) { c.TenantID = "common" }, []string{`tenant_id "common"`}},
		{"organizations", func(c *auth.Credentials) { c.TenantID = "Organizations" }, []string{"does not work for app-only"}},
		{"tenant path", func(c *auth.Credentials) { c.TenantID = "x/../y" }, []string{"not a GUID or domain"}},
		{"no client", func(c *auth.Credentials) { c.ClientID = "" }, []string{"client_id is empty"}},
		{"client spaces", func(c *auth.Credentials) { c.ClientID = "a b" }, []string{"client_id"}},
		{"no credential", func(c *auth.Credentials) { c.ClientSecret = "" }, []string{"no credential"}},
		{"two credentials", func(c *auth.Credentials) { c.FederatedTokenFile = "/tmp/x" }, []string{"more than one credential"}},
		{"key without cert", func(c *auth.Credentials) { c.ClientSecret, c.KeyFile = "", "/tmp/k" }, []string{"key_file is set without cert_file"}},
		{"http remote", func(c *auth.Credentials) { c.Authority = "http://login.example.com" }, []string{"plain http"}},
		{"ftp", func(c *auth.Credentials) { c.Authority = "ftp://login.example.com" }, []string{"must use https"}},
		{"not a url", func(c *auth.Credentials) { c.Authority = "login.microsoftonline.com" }, []string{"not a URL"}},
		{"query", func(c *auth.Credentials) { c.Authority = "https://login.microsoftonline.com?x=1" }, []string{"without query"}},
		{"permission scope", func(c *auth.Credentials) { c.Scope = "IMAP.AccessAsApp" }, []string{"/.default"}},
		{"two scopes", func(c *auth.Credentials) {
			c.Scope = "https://outlook.office365.com/.default https://graph.microsoft.com/.default"
		}, []string{"single resource"}},
		{"everything wrong", func(c *auth.Credentials) { *c = auth.Credentials{Scope: "x"} },
			[]string{"tenant_id is empty", "client_id is empty", "no credential", "/.default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			_, err := auth.New(c, nil)
			if tt.want == nil {
				if err != nil {
					t.Errorf("New(%v) = %v, want nil", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%v) = nil, want an error", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New() = %q, want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("New() error %q shows the secret", err)
			}
			if auth.IsTransient(err) {
				t.Errorf("IsTransient(%v) = true for a configuration error", err)
			}
		})
	}
}

func TestAuthorityFor(t *testing.T) {
	for cloud, want := range map[string]string{
		"":       "https://login.microsoftonline.com",
		"public": "https://login.microsoftonline.com",
		"usgov":  "https://login.microsoftonline.us",
		"China":  "https://login.chinacloudapi.cn",
	} {
		if got, err := auth.AuthorityFor(cloud); err != nil || got != want {
			t.Errorf("AuthorityFor(%q) = %q, %v; want %q", cloud, got, err, want)
		}
	}
	if _, err := auth.AuthorityFor("germany"); err == nil || !strings.Contains(err.Error(), "public, usgov or china") {
		t.Errorf("AuthorityFor(germany) = %v, want an error listing the clouds", err)
	}
}
