package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/source"
)

// TestStoreRaw checks that store_raw resolves like every mailbox option:
// built-in always, then defaults, the account and the mailbox entry.
func TestStoreRaw(t *testing.T) {
	c := mustParse(t, base(
		"    store_raw: on_problems",
		"    additional_users:",
		"      - billing@contoso.com",
		"      - address: hr@contoso.com",
		"        store_raw: never",
		"  - name: sales",
		"    tenant_id: 0f6b3a52-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    client_secret: other-secret-Zr5",
		"    mailbox: sales@contoso.com",
	), nil)
	want := map[string]source.StoreRaw{
		"support@contoso.com": source.RawOnProblems,
		"billing@contoso.com": source.RawOnProblems,
		"hr@contoso.com":      source.RawNever,
		"sales@contoso.com":   source.RawAlways, // nothing set: the built-in default
	}
	for _, m := range c.Mailboxes() {
		if m.StoreRaw != want[m.Address] {
			t.Errorf("%s: store_raw = %q, want %q", m.Address, m.StoreRaw, want[m.Address])
		}
		if err := m.Mailbox.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", m.Address, err)
		}
	}
	c = mustParse(t, base("defaults: {store_raw: never}"), nil)
	if got := c.Mailboxes()[0].StoreRaw; got != source.RawNever {
		t.Errorf("defaults.store_raw never: mailbox has %q", got)
	}
}

// TestStoreRawInvalid checks that a bad store_raw is reported at its file
// and line, at every level, with the valid values as the fix.
func TestStoreRawInvalid(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		line int
		key  string
	}{
		{"defaults", base("defaults:", "  store_raw: sometimes"), 8, "defaults.store_raw"},
		{"account", base("    store_raw: sometimes"), 7, "accounts[0].store_raw"},
		{"mailbox", base("    additional_users:", "      - address: x@contoso.com", "        store_raw: sometimes"), 9, "accounts[0].additional_users[0].store_raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := problems(t, tt.data, nil)
			if len(es.List) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(es.List), es)
			}
			e := es.List[0]
			if e.File != "config.yaml" || e.Line != tt.line || e.Key != tt.key || !strings.Contains(e.Msg, `"sometimes" is not valid`) {
				t.Errorf("error = %s:%d %s: %s; want config.yaml:%d %s", e.File, e.Line, e.Key, e.Msg, tt.line, tt.key)
			}
			if !strings.Contains(e.Fix, "always, on_problems, never") {
				t.Errorf("fix = %q, want the valid values", e.Fix)
			}
			if s := es.Error(); !strings.Contains(s, fmt.Sprintf("config.yaml:%d: %s", tt.line, tt.key)) {
				t.Errorf("message %q does not name config.yaml:%d and the key", s, tt.line)
			}
		})
	}
}
