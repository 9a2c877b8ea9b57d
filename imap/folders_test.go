package imap

import "testing"

func TestJoinPath(t *testing.T) {
	for _, c := range []struct {
		path  string
		delim rune
		want  string
	}{
		{"Inbox/Processed", '.', "INBOX.Processed"},
		{"inbox/Support/Incoming", '/', "INBOX/Support/Incoming"},
		{"Archive/2026/", '.', "Archive.2026"},
		{"Inboxes/x", '.', "Inboxes.x"},
	} {
		if got := joinPath(c.path, c.delim); got != c.want {
			t.Errorf("joinPath(%q, %q) = %q, want %q", c.path, c.delim, got, c.want)
		}
	}
}
