package message

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSummary(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"01-plain-ascii", `Alice Example <alice@example.net>  "Password reset request"`},
		{"06-three-attachments", `Alice Example <alice@example.net>  "Photos and archive"  [3 attachments]`},
		{"22-dsn-bounce", `Mail Delivery System <MAILER-DAEMON@mx.example.com>  "Undelivered Mail Returned to Sender"  [2 attachments]  [auto_reply]  [bounce]`},
	} {
		raw, err := os.ReadFile(filepath.Join(corpusDir, tc.name+".eml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := Parse(raw, nil).Summary(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	m := &Message{From: []Address{{Name: "Evil\r\nX-Injected: 1", Address: "e@example.net"}}, Subject: "a\nb",
		Auto: Auto{AutoReply: true, Bulk: true}, Problems: []Problem{{Code: ProblemBadDate}, {Code: ProblemBadAddress}}}
	if got, want := m.Summary(), `Evil  X-Injected: 1 <e@example.net>  "a\nb"  [auto_reply]  [bulk]  [2 problems]`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got, want := (&Message{}).Summary(), `(no sender)  ""`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
