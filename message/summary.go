package message

import (
	"fmt"
	"strings"
)

// Summary is m on one line for people: the first sender, the quoted
// subject, then tags for attachments, the auto flags and problems, e.g.
//
//	Alice Example <alice@example.net>  "Invoice 2026-118"  [1 attachment]  [bulk]
func (m *Message) Summary() string {
	from := "(no sender)"
	if len(m.From) > 0 {
		from = m.From[0].Address
		if m.From[0].Name != "" {
			from = m.From[0].Name + " <" + from + ">"
		}
		from = oneLine(from)
	}
	out := fmt.Sprintf("%s  %q", from, m.Subject)
	count := func(n int, what string) {
		if n == 1 {
			out += fmt.Sprintf("  [1 %s]", what)
		} else if n > 1 {
			out += fmt.Sprintf("  [%d %ss]", n, what)
		}
	}
	count(len(m.Attachments), "attachment")
	for _, f := range []struct {
		on  bool
		tag string
	}{{m.Auto.AutoReply, "auto_reply"}, {m.Auto.Bounce, "bounce"}, {m.Auto.Bulk, "bulk"}} {
		if f.on {
			out += "  [" + f.tag + "]"
		}
	}
	count(len(m.Problems), "problem")
	return out
}

// oneLine replaces control characters, line breaks included, by spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}
