package config

import (
	"strings"
	"testing"
)

// TestFolders: folders makes one Mailbox per folder; a folder or folders
// at a more specific level replaces the one above.
func TestFolders(t *testing.T) {
	c := mustParse(t, base(
		"    folders: [Inbox, Inbox/Support]",
		"    additional_users:",
		"      - billing@contoso.com",
		"      - address: hr@contoso.com",
		"        folder: Applications",
		"      - address: ops@contoso.com",
		"        folders: [Alerts]",
	), nil)
	var got []string
	for _, mb := range c.Mailboxes() {
		got = append(got, mb.Address+":"+mb.Folder)
	}
	want := "support@contoso.com:Inbox support@contoso.com:Inbox/Support billing@contoso.com:Inbox billing@contoso.com:Inbox/Support hr@contoso.com:Applications ops@contoso.com:Alerts"
	if strings.Join(got, " ") != want {
		t.Errorf("Mailboxes() =\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
}

func TestFolderErrors(t *testing.T) {
	tests := []struct {
		name, key, msg string
		data           []byte
	}{
		{"both", "accounts[0].folders", "both set", base("    folder: INBOX", "    folders: [A]")},
		{"empty list", "accounts[0].folders", "empty", base("    folders: []")},
		{"twice", "accounts[0].folders[1]", "listed twice", base("    folders: [Inbox, inbox]")},
		{"move into a polled folder", "accounts[0].move_to", "a folder this mailbox polls", base("    folders: [Inbox, Inbox/Done]", "    after_read: move", "    move_to: Inbox/Done")},
		{"quarantine into the polled folder", "accounts[0].quarantine", "a folder this mailbox polls", base("    quarantine: INBOX")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { problemAt(t, tt.data, tt.key, tt.msg) })
	}
}
