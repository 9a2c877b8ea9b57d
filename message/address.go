package message

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
)

// addresses reads the address list in header key. A list a strict
// RFC 5322 reader refuses is read piece by piece (see lenientAddresses),
// keeping every address that can be made out, and recorded as bad_address.
func (p *parser) addresses(h gomessage.Header, key string) []Address {
	v := h.Get(key)
	if strings.TrimSpace(v) == "" {
		return nil
	}
	if !utf8.ValidString(v) {
		h = gomessage.Header{}
		h.Set(key, p.latin1(key, v))
		v = h.Get(key)
	}
	mh := gomail.Header{Header: h}
	if list, err := mh.AddressList(key); err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, p.address(key, a.Name, a.Address))
		}
		return out
	}
	var out []Address
	for _, a := range lenientAddresses(unfold(v)) {
		out = append(out, p.address(key, a.Name, a.Address))
	}
	p.problem("", ProblemBadAddress, key+": "+p.utf8("", unfold(v)))
	return out
}

// address makes a parsed name and address valid UTF-8. Encoded words
// inside a quoted name (which RFC 2047 forbids but Outlook and many
// scripts write) are decoded too.
func (p *parser) address(key, name, addr string) Address {
	if strings.Contains(name, "=?") {
		name = p.decodeHeader(key, name)
	}
	return Address{Name: p.utf8("", name), Address: p.utf8("", addr)}
}

// lenientAddresses reads an address list that net/mail refuses: pieces
// separated by commas or semicolons (outside quotes and comments); a piece without "@" is the start of a display name that
// held an unquoted comma ("Müller, Hans <hans@example.de>"); group names
// are dropped; each piece is read by net/mail, else as "name <address>",
// else as a bare address; pieces with no address in them are skipped.
func lenientAddresses(v string) []mail.Address {
	var out []mail.Address
	pending := -1 // start in v of a name carried over to the next piece
	for _, r := range splitAddressList(v) {
		start := r[0]
		if pending >= 0 {
			start = pending // the name and this piece as written, separator included
		}
		piece := strings.TrimSpace(stripGroupName(v[start:r[1]]))
		pending = -1
		if piece == "" {
			continue
		}
		if !strings.Contains(piece, "@") {
			if r[1]-start <= maxPendingName { // longer is junk, not a name
				pending = start
			}
			continue
		}
		if a, ok := readAddress(piece); ok {
			out = append(out, a)
		}
	}
	return out
}

// splitAddressList returns the [start, end) ranges of v between commas
// and semicolons that are outside quoted strings and comments. (Angle
// brackets are not tracked: an unclosed "<" must not swallow the rest of
// the list.)
func splitAddressList(v string) [][2]int {
	var out [][2]int
	quoted, escaped := false, false
	paren, start := 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case escaped:
			escaped = false
		case c == '\\' && (quoted || paren > 0):
			escaped = true
		case c == '"' && paren == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			paren++
		case c == ')' && paren > 0:
			paren--
		case paren > 0:
		case c == ',' || c == ';':
			out = append(out, [2]int{start, i})
			start = i + 1
		}
	}
	return append(out, [2]int{start, len(v)})
}

// stripGroupName drops a leading "group name:" from a piece.
func stripGroupName(piece string) string {
	name, rest, ok := strings.Cut(piece, ":")
	if ok && !strings.ContainsAny(name, "@<\"(") {
		return rest
	}
	return piece
}

// maxPendingName bounds a display name carried over to the next piece.
const maxPendingName = 256

var lenientParser = &mail.AddressParser{WordDecoder: wordDecoder}

// readAddress reads one piece of an address list as well as it can.
func readAddress(piece string) (mail.Address, bool) {
	if a, err := lenientParser.Parse(piece); err == nil {
		return *a, true
	}
	if i := strings.LastIndexByte(piece, '<'); i >= 0 {
		if j := strings.IndexByte(piece[i:], '>'); j > 0 {
			if addr, ok := addrSpec(piece[i+1 : i+j]); ok {
				name := strings.TrimSpace(piece[:i])
				if unq, ok := strings.CutPrefix(name, `"`); ok {
					name = strings.ReplaceAll(strings.TrimSuffix(unq, `"`), `\"`, `"`)
				}
				return mail.Address{Name: strings.TrimSpace(name), Address: addr}, true
			}
		}
	}
	for _, f := range strings.Fields(piece) {
		if addr, ok := addrSpec(strings.Trim(f, `<>"'()[]`)); ok {
			return mail.Address{Address: addr}, true
		}
	}
	return mail.Address{}, false
}

// addrSpec accepts s when it looks like local@domain.
func addrSpec(s string) (string, bool) {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t<>,;") || strings.ContainsAny(s[at+1:], `@"()[]\`) {
		return "", false
	}
	return s, true
}
