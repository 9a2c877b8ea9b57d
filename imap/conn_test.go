package imap

import (
	"errors"
	"strings"
	"testing"
)

func TestAnnounced(t *testing.T) {
	for _, c := range []struct {
		line     string
		n        int64
		body, ok bool
	}{
		{"* 1 FETCH (UID 7 BODY[] {150}\r", 150, true, true},
		{"* 1 FETCH (UID 7 BODY[HEADER] {20}", 20, true, true},
		{"* 1 FETCH (UID 7 BODY[]<0> {20}\r", 20, true, true},
		{"* 1 FETCH (BINARY[1] ~{20}\r", 20, true, true},
		{"* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {9}\r", 9, true, true},
		{`* LIST () "/" {5}` + "\r", 5, false, true},
		{"* 1 FETCH (ENVELOPE (NIL {12}\r", 12, false, true},
		{"* OK {99999999999999999999999}\r", 1<<63 - 1, false, true},
		{"* OK done\r", 0, false, false},
		{"* OK {}\r", 0, false, false},
		{"* OK 5}\r", 0, false, false},
	} {
		n, body, ok := announced([]byte(c.line))
		if n != c.n || body != c.body || ok != c.ok {
			t.Errorf("announced(%q) = %d, %v, %v; want %d, %v, %v", c.line, n, body, ok, c.n, c.body, c.ok)
		}
	}
}

func TestScanLimits(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks []string
		what   string // "" means no error
	}{
		{"short lines", []string{"* OK hi\r\n", "T1 OK done\r\n"}, ""},
		{"long line across reads", []string{"* OK " + strings.Repeat("a", 60), strings.Repeat("a", 60) + "\r\n"}, "line"},
		{"literal bytes do not count as a line", []string{"* 1 FETCH (BODY[] {300}\r\n", strings.Repeat("x", 300), ")\r\n"}, ""},
		{"body literal over the cap", []string{"* 1 FETCH (BODY[] {999999999999}\r\n"}, "body literal"},
		{"other literal over the line limit", []string{`* LIST () "/" {101}` + "\r\n"}, "literal"},
		{"other literal within it", []string{`* LIST () "/" {5}` + "\r\n", "INBOX\r\n"}, ""},
	} {
		c2 := newConn(nil, 100)
		var err error
		for _, ch := range c.chunks {
			if err = c2.scan([]byte(ch)); err != nil {
				break
			}
		}
		var le *LimitError
		switch {
		case c.what == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.what != "" && (!errors.As(err, &le) || le.What != c.what || !errors.Is(err, ErrServerLimit)):
			t.Errorf("%s: %v, want a LimitError for the %s", c.name, err, c.what)
		}
	}
}
