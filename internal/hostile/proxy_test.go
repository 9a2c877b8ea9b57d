package hostile

import (
	"testing"

	goimap "github.com/emersion/go-imap/v2"
)

func TestRewrite(t *testing.T) {
	for _, c := range []struct {
		f        Faults
		in, want string
	}{
		{Faults{DropUIDNext: true}, "* OK [UIDNEXT 5] Predicted next UID\r\n", ""},
		{Faults{DropUIDNext: true}, "* 3 EXISTS\r\n", "* 3 EXISTS\r\n"},
		{Faults{DropUIDValidity: true}, "* OK [UIDVALIDITY 1] UIDs valid\r\n", ""},
		{Faults{DropUIDNext: true}, "* STATUS INBOX (UIDNEXT 5 UIDVALIDITY 1)\r\n", "* STATUS INBOX (UIDVALIDITY 1)\r\n"},
		{Faults{DropUIDNext: true, DropUIDValidity: true}, "* STATUS INBOX (UIDVALIDITY 1 UIDNEXT 5)\r\n", "* STATUS INBOX ()\r\n"},
		{Faults{HideCaps: []goimap.Cap{goimap.CapUIDPlus}}, "* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n", "* CAPABILITY IMAP4rev1 MOVE\r\n"},
		{Faults{HideCaps: []goimap.Cap{goimap.CapUIDPlus}}, "T1 OK [CAPABILITY IMAP4rev1 UIDPLUS] done\r\n", "T1 OK [CAPABILITY IMAP4rev1] done\r\n"},
	} {
		if got := rewrite(c.in, c.f); got != c.want {
			t.Errorf("rewrite(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCommand(t *testing.T) {
	tag, name, rest := command("T4 UID FETCH 1:* (UID BODY.PEEK[])\r\n")
	if tag != "T4" || name != "UID FETCH" || rest != "1:* (UID BODY.PEEK[])" {
		t.Errorf("command = %q %q %q", tag, name, rest)
	}
}
